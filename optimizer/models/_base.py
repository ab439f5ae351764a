"""The model backend seam: one async call from messages and parameters to text, tokens, cost and latency."""

from __future__ import annotations

import abc
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class Constraint(BaseModel):
    """Restrict the output: exactly one of ``labels`` (one label out of a list) or ``json_schema``.

    ``label_scores`` (with ``labels``): score every label by its log-probability after the prompt instead of
    decoding one; the answer is the most probable label and the response carries every label's log-probability
    (:attr:`ModelResponse.label_logprobs`), which a calibrated configuration corrects by its label bias.
    """

    model_config = ConfigDict(frozen=True)
    labels: tuple[str, ...] | None = None
    json_schema: dict[str, Any] | None = None
    label_scores: bool = False

    @model_serializer(mode="wrap")
    def _omit_default_scores(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when off, so that a request's cache key is what it was before label scoring existed.
        data: dict[str, Any] = handler(self)
        if not data.get("label_scores"):
            data.pop("label_scores", None)
        return data


class ModelRequest(BaseModel):
    """One model call. Holds no credential: keys come from the environment inside the backend."""

    model_config = ConfigDict(frozen=True)
    model: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any] = Field(default_factory=dict, description="temperature, max_tokens, top_p, seed, stop...")
    constraint: Constraint | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    response_format: dict[str, Any] | None = None
    timeout_s: float = 60.0


class ModelResponse(BaseModel):
    model_config = ConfigDict(frozen=True)
    text: str
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    latency_s: float = Field(0.0, ge=0)
    tool_calls: tuple[dict[str, Any], ...] | None = None
    label_logprobs: dict[str, float] | None = Field(
        None, description="Each label's log-probability, when the request asked for label scores."
    )


class ModelBackend(abc.ABC):
    """Contract:

    * ``complete`` is safe to call concurrently from one event loop; the engine bounds concurrency itself.
    * It raises :class:`promptopt.errors.ModelCallError` for every failure, with ``retryable`` set for 429, 5xx
      and timeouts and ``retry_after`` (seconds) when the provider sent one. It never returns an empty success
      for a failed call.
    * It never logs or returns credentials.
    """

    @abc.abstractmethod
    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one call."""

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        """Dollar estimate of a call before it is sent (for budgets); 0 when unknown or free."""
        return 0.0

    async def aclose(self) -> None:
        """Release connections; default does nothing."""
