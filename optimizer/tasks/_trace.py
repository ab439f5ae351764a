"""What one prompt call inside a code task did (a span) and what the task's function gets back from it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python


class Span(BaseModel):
    """One call of a named prompt while a code task ran one case: the prompt's variables, the messages sent,
    the answer and what it cost. ``error`` is set (and ``output`` is ``None``) when the call failed.

    :meth:`log_record` gives it in the production log format (``promptopt.logs``), so that a trace and an
    application's logs of the same pipeline are one kind of record.
    """

    model_config = ConfigDict(frozen=True)
    prompt: str
    input: dict[str, Any]
    messages: tuple[dict[str, Any], ...] = ()
    output: str | None = None
    parsed: Any = None
    parse_error: str | None = None
    model: str = ""
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0, description="What this eval paid for the call (0 for a cache hit).")
    latency_s: float = Field(0.0, ge=0, description="What this eval waited for the call (0 for a cache hit).")
    call_cost_usd: float | None = None
    call_latency_s: float | None = None
    cache_hit: bool = False
    tool_calls: tuple[dict[str, Any], ...] | None = None
    error: str | None = None

    @classmethod
    def of_call(cls, prompt: str, variables: dict[str, Any], messages: Any, model: str, **fields: Any) -> Span:
        """A span of one call: the variables kept as JSON (a value that is not becomes its ``str``, and later
        changes to the caller's objects do not reach the record)."""
        return cls(
            prompt=prompt,
            input=to_jsonable_python(dict(variables), fallback=str),
            messages=to_jsonable_python(tuple(messages), fallback=str),
            model=model,
            **fields,
        )

    def reply(self) -> PromptReply:
        """What the task's function gets back from this (answered) call."""
        return PromptReply(
            text=self.output or "", parsed=self.parsed, parse_error=self.parse_error, tool_calls=self.tool_calls or ()
        )

    def log_record(self) -> dict[str, Any]:
        """This span as a production log entry (the fields ``PromptLogger.log`` takes)."""
        return {
            "prompt": self.prompt,
            "input": self.input,
            "output": self.output,
            "model": self.model,
            "latency_s": self.call_latency_s,
            "tokens": self.prompt_tokens + self.completion_tokens,
            "cost_usd": self.call_cost_usd,
            "metadata": {"messages": list(self.messages), "tool_calls": self.tool_calls, "error": self.error},
        }


class PromptReply(BaseModel):
    """What ``await prompts.<name>(...)`` returns: the text, the value parsed by the prompt's ``output`` spec
    (the label, the JSON value, or the text; ``None`` when parsing failed) and the tool calls the model asked
    for. ``str(reply)`` is the text."""

    model_config = ConfigDict(frozen=True)
    text: str
    parsed: Any = None
    parse_error: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.text

    @property
    def value(self) -> Any:
        """The parsed value, else the text."""
        return self.text if self.parsed is None else self.parsed


def output_text(value: Any) -> str:
    """A task function's return value as the row's output text (JSON for structured values)."""
    if isinstance(value, PromptReply):
        return value.text
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
