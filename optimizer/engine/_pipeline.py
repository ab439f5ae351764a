"""One case of a code task: the user's function runs with its prompts bound to the engine, every prompt call
recorded as a span."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptopt.config import PipelineConfig
from promptopt.data import Case
from promptopt.engine._parse import parse_output
from promptopt.errors import BudgetExceeded, ModelCallError
from promptopt.models import ModelRequest
from promptopt.secrets import scrub_secrets
from promptopt.spec import EvalSettings
from promptopt.tasks import (
    IsolatedFunction,
    IsolatedTaskError,
    PromptReply,
    Prompts,
    Span,
    TaskFunction,
    load_function,
    output_text,
)

Complete = Callable[[ModelRequest], Awaitable[Any]]  # returns the evaluator's _Completion


@dataclass
class _Trace:
    spans: list[Span] = field(default_factory=list)


class TaskFunctionError(Exception):
    """The task's function raised: the row fails with this message (the function's own exception chained)."""


def resolve(config: PipelineConfig, cache: dict[str, Any], settings: EvalSettings) -> TaskFunction:
    """The function of ``config``, imported once per evaluator; with ``settings.isolate``, the same function
    run in worker processes (:class:`~promptopt.tasks.IsolatedFunction`), started once per evaluator."""
    if config.function not in cache:
        if settings.isolate:
            load_function(config.function)  # an import error names the field here, before any worker starts
            cache[config.function] = IsolatedFunction(
                config.function, list(config.prompts), size=settings.concurrency, timeout_s=settings.task_timeout_s
            )
        else:
            cache[config.function] = load_function(config.function)
    fn: TaskFunction = cache[config.function]
    return fn


def close_functions(cache: dict[str, Any]) -> None:
    """Stop the worker processes of isolated functions."""
    for fn in cache.values():
        if isinstance(fn, IsolatedFunction):
            fn.close()


async def run_case(
    fn: TaskFunction,
    config: PipelineConfig,
    case: Case,
    *,
    request_for: Callable[[Any, dict[str, Any], float], ModelRequest],
    complete: Complete,
    timeout_s: float,
) -> tuple[dict[str, Any], str | None]:
    """Run ``fn`` on one case; returns the row's fields (output, parsed, figures summed over the spans, the
    trace) and an error message, or ``None``. A budget that runs out stops the row (``BudgetExceeded``)."""
    trace = _Trace()

    async def call(name: str, variables: dict[str, Any], history: Sequence[dict[str, Any]]) -> PromptReply:
        prompt = config.prompt(name)
        request = request_for(prompt, variables, timeout_s)
        if history:
            request = request.model_copy(update={"messages": request.messages + tuple(history)})
        base = {"prompt": name, "input": dict(variables), "messages": request.messages, "model": prompt.model}
        try:
            done = await complete(request)
        except ModelCallError as exc:
            trace.spans.append(Span(**base, error=scrub_secrets(str(exc))))
            raise
        response = done.response
        parsed, parse_error = parse_output(response.text, prompt.output)
        trace.spans.append(
            Span(
                **base,
                output=response.text,
                parsed=parsed,
                parse_error=parse_error,
                prompt_tokens=response.prompt_tokens,
                completion_tokens=response.completion_tokens,
                cost_usd=0.0 if done.hit else response.cost_usd,
                latency_s=0.0 if done.hit else response.latency_s,
                call_cost_usd=done.cost_usd,
                call_latency_s=done.latency_s,
                cache_hit=done.hit,
                tool_calls=response.tool_calls,
            )
        )
        return PromptReply(
            text=response.text, parsed=parsed, parse_error=parse_error, tool_calls=response.tool_calls or ()
        )

    error: str | None = None
    out: Any = None
    try:
        out = fn(copy.deepcopy(case.input), Prompts(list(config.prompts), call))
        if inspect.isawaitable(out):
            out = await out
    except BudgetExceeded:
        raise
    except ModelCallError as exc:
        failed = next((s.prompt for s in reversed(trace.spans) if s.error is not None), None)
        where = f" in prompt {failed!r}" if failed else ""
        error = scrub_secrets(f"model call failed{where}: {exc}")
    except IsolatedTaskError as exc:
        error = scrub_secrets(
            str(exc) if "task function" in str(exc) else f"task function {config.function} failed: {exc}"
        )
    except Exception as exc:  # noqa: BLE001 - the user's code failed on this case: the row's error
        error = scrub_secrets(f"task function {config.function} failed: {type(exc).__name__}: {exc}")
    return _fields(trace.spans, out, config, error), error


def _fields(spans: list[Span], out: Any, config: PipelineConfig, error: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "trace": tuple(spans),
        "cache_hit": bool(spans) and all(s.cache_hit for s in spans),
        "task_prompt_tokens": sum(s.prompt_tokens for s in spans),
        "task_completion_tokens": sum(s.completion_tokens for s in spans),
        "task_cost_usd": sum(s.cost_usd for s in spans),
        "latency_s": sum(s.latency_s for s in spans),
        "call_cost_usd": _known_sum([s.call_cost_usd for s in spans]),
        "call_latency_s": _known_sum([s.call_latency_s for s in spans]),
    }
    if error is None:
        text = output_text(out)
        parsed, parse_error = parse_output(text, config.output)
        fields |= {"output": text, "parsed": parsed, "parse_error": parse_error}
    return fields


def _known_sum(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)
