"""A scripted fake backend for unit tests: answers come from a function of the request, failures are injected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from promptopt.errors import ModelCallError
from promptopt.models._base import ModelBackend, ModelRequest, ModelResponse

Responder = Callable[[ModelRequest], str | ModelResponse | ModelCallError | Exception]


@dataclass
class ScriptedBackend(ModelBackend):
    """Calls ``respond(request)``; a returned exception is raised (so a test can script 429s or timeouts), a
    returned :class:`ModelResponse` is answered as it is (tool calls, exact token counts).

    Every request is recorded in ``calls`` so tests assert what crossed the boundary.
    """

    respond: Responder
    latency_s: float = 0.0
    cost_per_call: float = 0.0
    calls: list[ModelRequest] = field(default_factory=list)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        answer = self.respond(request)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, ModelResponse):
            return answer
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.messages)
        return ModelResponse(
            text=answer,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(answer.split()),
            cost_usd=self.cost_per_call,
            latency_s=self.latency_s,
        )

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return self.cost_per_call
