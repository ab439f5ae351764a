"""A trial's budget and per-model limit inside a worker, in one object, so that waiting for a budget lease
happens where the engine already waits: in the limiter's slot, not in the budget's synchronous ``reserve``.

The engine sends a call as ``estimate = backend.estimate_cost(...)``, then ``async with limiter.slot(model)``,
then ``budget.reserve(1, estimate)`` with no await in between (``promptopt.engine._runner.Evaluator._call``).
:class:`MeteredBackend` notes the estimate in the calling task's context; :meth:`TrialGate.slot` takes that
call out of the trial's :class:`LeasePool` (leasing asynchronously if needed), and ``reserve`` only checks
that the slot took it. No model call waits on a blocking round trip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from promptopt.engine import Budget, BudgetUse, CallLimiter
from promptopt.models import ModelBackend, ModelRequest, ModelResponse
from promptopt.workers._lease import LeasePool

_ESTIMATE: ContextVar[float] = ContextVar("promptopt_call_estimate", default=0.0)


@dataclass
class _Taken:
    usd: float
    reserved: bool = False


_TAKEN: ContextVar[_Taken | None] = ContextVar("promptopt_call_taken", default=None)


class MeteredBackend(ModelBackend):
    """``inner`` unchanged, except that each cost estimate is noted for the :class:`TrialGate` of the task."""

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self.inner.complete(request)

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        usd = self.inner.estimate_cost(request, completion_tokens)
        _ESTIMATE.set(usd)
        return usd

    async def aclose(self) -> None:
        await self.inner.aclose()


class TrialGate(Budget, CallLimiter):
    """The limiter and the budget of one trial: a slot of ``limiter`` (the worker's share of the cluster's
    per-model limit), then one call out of ``pool`` (the trial's budget lease)."""

    def __init__(self, limiter: CallLimiter, pool: LeasePool) -> None:
        self._limiter, self.pool = limiter, pool
        self._calls, self._usd = 0, 0.0

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        async with self._limiter.slot(model):
            taken = _Taken(_ESTIMATE.get())
            await self.pool.take(taken.usd)  # raises BudgetExceeded, as reserve would
            token = _TAKEN.set(taken)
            try:
                yield
            finally:
                _TAKEN.reset(token)
                if not taken.reserved:
                    self.pool.put_back(taken.usd)

    def reserve(self, calls: int, usd: float) -> None:
        taken = _TAKEN.get()
        if taken is None or taken.reserved or calls != 1 or usd > taken.usd:
            raise RuntimeError(
                f"reserve({calls}, {usd}) without a call taken by TrialGate.slot: the engine "
                "must estimate the cost through MeteredBackend, then hold a slot, then reserve"
            )
        taken.reserved = True
        self._calls += 1
        self._usd += usd

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self.pool.settle(reserved_usd, actual_usd)
        self._usd += actual_usd - reserved_usd

    def used(self) -> BudgetUse:
        """What this trial spent (the cluster's total is the budget actor's)."""
        return BudgetUse(model_calls=self._calls, usd=self._usd)
