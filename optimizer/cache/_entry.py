"""What a cache entry holds: the response of the call that filled it, and what that call cost and took."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptopt.models import ModelResponse


class CacheEntry(BaseModel):
    """One cached model call.

    Stored as the response's JSON (``ModelResponse.model_dump``), whose ``cost_usd`` and ``latency_s`` are the
    figures of the call that filled the entry. A hit is free and instant for the eval that reads it, but these
    figures still say what the configuration costs and how long it takes when it really runs.

    An entry written without a figure still loads: the figure is ``None`` (unknown), never 0.

    Example::

        cache.set(key, CacheEntry.of(response).dump())
        entry = CacheEntry.load(cache.get(key))  # entry.cost_usd, entry.latency_s
    """

    model_config = ConfigDict(frozen=True)
    response: ModelResponse
    cost_usd: float | None = Field(None, ge=0)
    latency_s: float | None = Field(None, ge=0)

    @classmethod
    def of(cls, response: ModelResponse) -> CacheEntry:
        """The entry for a call that just ran."""
        return cls(response=response, cost_usd=response.cost_usd, latency_s=response.latency_s)

    @classmethod
    def load(cls, value: dict[str, Any]) -> CacheEntry:
        """An entry as stored by :meth:`dump`, or written without ``cost_usd`` / ``latency_s``."""
        return cls(
            response=ModelResponse.model_validate(value),
            cost_usd=value.get("cost_usd"),
            latency_s=value.get("latency_s"),
        )

    def dump(self) -> dict[str, Any]:
        """The stored form (unchanged since the first cache: older and newer versions read each other's)."""
        return self.response.model_dump(mode="json")
