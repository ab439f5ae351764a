"""One per-model concurrency limit for the whole cluster: semaphores in an async actor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ray  # noqa: TID251 (workers/ is the Ray adapter)

from promptopt.engine import CallLimiter


@ray.remote(num_cpus=0, max_concurrency=100_000)
class LimiterActor:
    """Per-model semaphores, each slot held under a token.

    Tokens make a release safe whatever the order of arrival: a release that comes before its acquire has
    finished (the caller was cancelled) frees the slot as soon as it is taken, and a release from before a
    :meth:`reset` frees nothing.
    """

    def __init__(self, concurrency: int, per_model: dict[str, int] | None = None) -> None:
        self.concurrency, self.per_model = concurrency, per_model or {}
        self._clear()

    async def reset(self) -> None:
        """Forget every slot; called between batches, when no trial runs, to reclaim slots of dead workers."""
        self._clear()

    def _clear(self) -> None:
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._held: dict[str, asyncio.Semaphore] = {}
        self._abandoned: set[str] = set()

    async def acquire(self, model: str, token: str) -> None:
        sem = self._sems.get(model)
        if sem is None:
            sem = self._sems[model] = asyncio.Semaphore(self.per_model.get(model, self.concurrency))
        await sem.acquire()
        if token in self._abandoned:
            self._abandoned.discard(token)
            sem.release()
        else:
            self._held[token] = sem

    async def release(self, token: str) -> None:
        sem = self._held.pop(token, None)
        if sem is None:
            self._abandoned.add(token)
        else:
            sem.release()


class RayLimiter(CallLimiter):
    """The limiter inside a worker: ``slot(model)`` holds one of the :class:`LimiterActor`'s slots."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:  # type: ignore[override]
        token = uuid.uuid4().hex
        try:
            await self._actor.acquire.remote(model, token)
            yield
        finally:
            # Submitted at once, even if this task is being cancelled; the token keeps it correct.
            await self._actor.release.remote(token)
