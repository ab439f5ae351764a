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
from promptopt.errors import BudgetExceeded, InputError, ModelCallError, OptimizeError
from promptopt.models import ModelRequest
from promptopt.secrets import scrub_secrets
from promptopt.spec import EvalSettings, template_variables
from promptopt.tasks import (
    IsolatedFunction,
    IsolatedTaskError,
    PromptReply,
    Prompts,
    Span,
    TaskFunction,
    code_hash,
    load_function,
    output_text,
)

Complete = Callable[[ModelRequest], Awaitable[Any]]  # returns the evaluator's _Completion


@dataclass
class _Trace:
    """The spans of one case, and the first failure a prompt call raised (kept even if the function caught it:
    a failed call fails its row, and a budget that ran out stops the eval, whatever the function does)."""

    spans: list[Span] = field(default_factory=list)
    failure: Exception | None = None

    def failed(self, exc: Exception) -> Exception:
        if self.failure is None:
            self.failure = exc
        return exc


class PromptCallError(OptimizeError):
    """A prompt was called without a variable its template reads."""


def resolve(config: PipelineConfig, cache: dict[str, Any], settings: EvalSettings) -> TaskFunction:
    """The function of ``config``, imported once per evaluator; with ``settings.isolate``, the same function
    run in worker processes (:class:`~promptopt.tasks.IsolatedFunction`), started once per evaluator.

    Raises:
        InputError: the function cannot be imported, or its module's code is not the code ``config`` was built
            with (a candidate of an earlier version of the function: evaluating it now would record the new
            code's answers under the old candidate).
    """
    if config.function not in cache:
        fn = load_function(config.function)
        if code_hash(fn) != config.code_hash:
            raise InputError(
                "",
                "task.function",
                f"the code of {config.function} changed since this candidate was built (module hash "
                f"{config.code_hash} -> {code_hash(fn)}); a new run or eval of the spec builds one of the new code",
            )
        if settings.isolate:
            cache[config.function] = IsolatedFunction(
                config.function, list(config.prompts), size=settings.concurrency, timeout_s=settings.task_timeout_s
            )
        else:
            cache[config.function] = fn
    resolved: TaskFunction = cache[config.function]
    return resolved


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
        try:
            request = request_for(prompt, variables, timeout_s)
        except KeyError as exc:
            reads = sorted({v for m in prompt.messages for v in template_variables(m.content)})
            raise trace.failed(
                PromptCallError(f"prompt {name!r} was called without {exc.args[0]}: it reads {reads}")
            ) from None
        if history:
            request = request.model_copy(update={"messages": request.messages + tuple(history)})
        called = (name, variables, request.messages, prompt.model)
        try:
            done = await complete(request)
        except (ModelCallError, BudgetExceeded) as exc:
            trace.spans.append(Span.of_call(*called, error=scrub_secrets(str(exc))))
            raise trace.failed(exc) from None
        response = done.response
        parsed, parse_error = parse_output(response.text, prompt.output)
        span = Span.of_call(
            *called,
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
        trace.spans.append(span)
        return span.reply()

    raised: Exception | None = None
    out: Any = None
    try:
        out = fn(copy.deepcopy(case.input), Prompts(list(config.prompts), call))
        if inspect.isawaitable(out):
            out = await out
    except Exception as exc:  # noqa: BLE001 - the user's code failed on this case: the row's error
        raised = exc
    failure = trace.failure or raised
    if isinstance(failure, BudgetExceeded):
        raise failure
    error = None if failure is None else scrub_secrets(_message(failure, trace.spans, config))
    return _fields(trace.spans, out, config, error), error


def _message(failure: Exception, spans: list[Span], config: PipelineConfig) -> str:
    if isinstance(failure, ModelCallError):
        failed = next((s.prompt for s in reversed(spans) if s.error is not None), None)
        return f"model call failed{f' in prompt {failed!r}' if failed else ''}: {failure}"
    if isinstance(failure, PromptCallError | IsolatedTaskError):
        return str(failure)
    return f"task function {config.function} failed: {type(failure).__name__}: {failure}"


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
