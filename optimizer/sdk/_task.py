"""Running a code task's registered version inside the application: the user's function with the version's
prompts, each call sent by the application's own model client, every call traced for the logs."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from promptopt.config import PipelineConfig
from promptopt.engine import parse_output
from promptopt.sdk._prompt import Prompt
from promptopt.tasks import PromptReply, Prompts, Span, TaskFunction, code_hash, output_text

Complete = Callable[[list[dict[str, Any]], dict[str, Any]], Awaitable[str | PromptReply]]
"""The application's model call: ``(messages, params) -> text`` (or a :class:`~promptopt.tasks.PromptReply`
with tool calls), where ``params`` are the prompt's model, decoding parameters, tools and response format."""


@dataclass(frozen=True)
class TaskRun:
    """One input through a code task: the function's return value, it as text, the prompt calls made, the
    wall time, and whether the function's module is the code the version was optimized with."""

    output: Any
    text: str
    spans: tuple[Span, ...]
    latency_s: float
    code_matches: bool

    @property
    def tokens(self) -> int:
        return sum(s.prompt_tokens + s.completion_tokens for s in self.spans)


async def run_task(version: Prompt, function: TaskFunction, input: dict[str, Any], *, complete: Complete) -> TaskRun:
    """Run ``function`` on ``input`` with the prompts of ``version`` (a code task's version from
    :class:`~promptopt.sdk.PromptClient`), sending each rendered prompt with ``complete``.

    Example::

        version = PromptClient(url).get("qa-pipeline")
        run = await run_task(version, answer_question, {"question": q}, complete=my_openai_call)
        logger.log_task(version, {"question": q}, run)  # logs of a pipeline are datasets as they are

    Raises:
        TypeError: ``version`` is one prompt, not a code task.
    """
    if not isinstance(version.config, PipelineConfig):
        raise TypeError(f"{version.name} v{version.version} is one prompt: render it with .render(...)")
    bundle = version.config
    spans: list[Span] = []

    async def call(name: str, variables: dict[str, Any], history: Sequence[dict[str, Any]]) -> PromptReply:
        prompt = bundle.prompt(name)
        messages = prompt.render(variables) + list(history)
        t0 = time.perf_counter()
        answer = await complete(messages, prompt.call_params())
        reply = answer if isinstance(answer, PromptReply) else PromptReply(text=str(answer))
        parsed, parse_error = parse_output(reply.text, prompt.output)
        took = time.perf_counter() - t0
        span = Span.of_call(
            name,
            variables,
            messages,
            prompt.model,
            output=reply.text,
            parsed=parsed,
            parse_error=parse_error,
            latency_s=took,
            call_latency_s=took,
            tool_calls=reply.tool_calls or None,
        )
        spans.append(span)
        return span.reply()

    t0 = time.perf_counter()
    out = function(dict(input), Prompts(list(bundle.prompts), call))
    if inspect.isawaitable(out):
        out = await out
    return TaskRun(
        output=out,
        text=output_text(out),
        spans=tuple(spans),
        latency_s=time.perf_counter() - t0,
        code_matches=code_hash(function) == bundle.code_hash,
    )
