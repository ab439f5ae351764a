"""The common agent loop: a prompt that may call tools, the user's tools run, their results sent back."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from promptopt.tasks._prompts import BoundPrompt
from promptopt.tasks._trace import PromptReply


@dataclass(frozen=True)
class AgentResult:
    """How the loop ended: the final reply (no tool calls, or the step limit reached), the model turns it took
    and every tool call made, in order, as ``{"name", "arguments", "result"}``."""

    reply: PromptReply
    steps: int
    calls: tuple[dict[str, Any], ...] = field(default=())


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


async def run_agent(
    prompt: BoundPrompt,
    tools: Mapping[str, Callable[..., Any]],
    /,
    *,
    max_steps: int = 5,
    **variables: Any,
) -> AgentResult:
    """Call ``prompt`` with ``variables``; while the model asks for tools, run them (sync or async, called with
    the arguments the model gave) and call the prompt again with the tool turns appended. A tool that raises or
    that the model invented answers with the error text, so the model can recover; the loop stops after
    ``max_steps`` model turns.

    Example::

        async def agent(input, prompts):
            done = await run_agent(prompts.agent, {"lookup": lookup}, question=input["question"])
            return done.reply.text
    """
    history: list[dict[str, Any]] = []
    made: list[dict[str, Any]] = []
    for step in range(1, max_steps + 1):
        reply = await prompt(history, **variables)
        if not reply.tool_calls or step == max_steps:
            return AgentResult(reply, step, tuple(made))
        history.append({"role": "assistant", "content": reply.text or None, "tool_calls": list(reply.tool_calls)})
        for call in reply.tool_calls:
            fn = call.get("function") or {}
            name, args = str(fn.get("name", "")), _arguments(fn.get("arguments"))
            result = await _run_tool(tools, name, args)
            made.append({"name": name, "arguments": args, "result": result})
            history.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": result})
    raise AssertionError("unreachable: the last step returns")


async def _run_tool(tools: Mapping[str, Callable[..., Any]], name: str, args: dict[str, Any]) -> str:
    tool = tools.get(name)
    if tool is None:
        return f"error: no tool {name!r}; the tools are {sorted(tools)}"
    try:
        out = tool(**args)
        if inspect.isawaitable(out):
            out = await out
    except Exception as exc:  # noqa: BLE001 - the model sees the failure and may try again
        return f"error: {type(exc).__name__}: {exc}"
    return out if isinstance(out, str) else json.dumps(out, ensure_ascii=False, default=str)
