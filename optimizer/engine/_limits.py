"""Budgets (checked before a call is sent) and per-model concurrency limits.

Both are small interfaces so that the Ray workers can supply cluster-wide implementations.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from pydantic import BaseModel, ConfigDict

from promptopt.errors import BudgetExceeded


class BudgetUse(BaseModel):
    model_config = ConfigDict(frozen=True)
    model_calls: int = 0
    usd: float = 0.0
    wall_s: float = 0.0


class Budget(abc.ABC):
    """Contract: ``reserve`` raises :class:`BudgetExceeded` *before* a call would pass a limit, and otherwise
    counts the call; ``settle`` replaces the reserved dollar estimate with the actual cost. Thread-safe."""

    @abc.abstractmethod
    def reserve(self, calls: int, usd: float) -> None: ...

    @abc.abstractmethod
    def settle(self, reserved_usd: float, actual_usd: float) -> None: ...

    @abc.abstractmethod
    def used(self) -> BudgetUse: ...


class LocalBudget(Budget):
    """In-process budget over model calls, dollars and wall time (from construction)."""

    def __init__(
        self,
        *,
        model_calls: int | None = None,
        usd: float | None = None,
        wall_s: float | None = None,
        start: BudgetUse | None = None,
    ) -> None:
        self.max_calls, self.max_usd, self.max_wall = model_calls, usd, wall_s
        start = start or BudgetUse()
        self._calls, self._usd = start.model_calls, start.usd
        self._t0 = time.monotonic() - start.wall_s
        self._lock = threading.Lock()

    def reserve(self, calls: int, usd: float) -> None:
        with self._lock:
            if self.max_wall is not None and time.monotonic() - self._t0 >= self.max_wall:
                raise BudgetExceeded(f"wall-time budget of {self.max_wall:g} s is spent")
            if self.max_calls is not None and self._calls + calls > self.max_calls:
                raise BudgetExceeded(f"model-call budget of {self.max_calls} calls is spent")
            if self.max_usd is not None and self._usd + usd > self.max_usd:
                raise BudgetExceeded(
                    f"dollar budget of ${self.max_usd:g} would be passed "
                    f"(spent ${self._usd:.4f}, next call ~${usd:.4f})"
                )
            self._calls += calls
            self._usd += usd

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        with self._lock:
            self._usd += actual_usd - reserved_usd

    def used(self) -> BudgetUse:
        with self._lock:
            return BudgetUse(model_calls=self._calls, usd=self._usd, wall_s=time.monotonic() - self._t0)


class CallLimiter(abc.ABC):
    """Bounds the calls in flight per model. Contract: ``slot(model)`` is an async context manager."""

    @abc.abstractmethod
    def slot(self, model: str) -> AbstractAsyncContextManager[None]: ...


class LocalLimiter(CallLimiter):
    """Per-model semaphores in one event loop."""

    def __init__(self, concurrency: int, per_model: dict[str, int] | None = None) -> None:
        self.concurrency, self.per_model = concurrency, per_model or {}
        self._sems: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        sem = self._sems.get(model)
        if sem is None:
            sem = self._sems[model] = asyncio.Semaphore(self.per_model.get(model, self.concurrency))
        async with sem:
            yield
