"""One budget for the whole cluster: an actor leases it out to the trials, the driver syncs it per batch."""

from __future__ import annotations

from typing import Any, cast

import ray  # noqa: TID251 (workers/ is the Ray adapter)

from promptopt.engine import BudgetUse, LocalBudget
from promptopt.errors import BudgetExceeded
from promptopt.workers._lease import Grant, LeaseLedger


@ray.remote(num_cpus=0, max_concurrency=1000)
class BudgetActor:
    """Holds the :class:`LeaseLedger` of the current batch. Async, so that its methods run one at a time on its
    event loop. A return from an earlier batch (a trial that outlived its cancelled batch) is ignored: its
    lease stays counted."""

    def __init__(self, limits: dict[str, Any], start: BudgetUse) -> None:
        self._limits, self._batch = limits, 0
        self._ledger = LeaseLedger(limits, start)

    async def restart(self, start: BudgetUse, batch: int) -> None:
        self._ledger, self._batch = LeaseLedger(self._limits, start), batch

    async def lease(self, calls: int, usd: float, *, extra_calls: int = 0, extra_usd: float = 0.0) -> Grant:
        return self._ledger.lease(calls, usd, extra_calls=extra_calls, extra_usd=extra_usd)

    async def give_back(self, calls: int, usd: float, batch: int) -> None:
        if batch == self._batch:
            self._ledger.give_back(calls, usd)

    async def used(self) -> BudgetUse:
        return self._ledger.used()


class BudgetLink:
    """The driver's side: the actor starts each batch from the driver budget's usage, and the batch's
    spending is added back to the driver budget afterwards, so the driver sees what the cluster spent.
    Trials give their unspent leases back before they return, so after a batch the actor's usage is what
    was spent (a worker that died keeps its lease counted: its calls may have been sent)."""

    def __init__(self, budget: LocalBudget) -> None:
        self.budget = budget
        limits = {"model_calls": budget.max_calls, "usd": budget.max_usd, "wall_s": budget.max_wall}
        self._start = budget.used()
        self.actor = cast(Any, BudgetActor).remote(limits, self._start)  # an actor class (ray.remote)

    async def begin_batch(self, batch: int) -> None:
        self._start = self.budget.used()
        await self.actor.restart.remote(self._start, batch)

    async def end_batch(self) -> None:
        after: BudgetUse = await self.actor.used.remote()
        absorb(self.budget, after.model_calls - self._start.model_calls, after.usd - self._start.usd)

    def close(self) -> None:
        ray.kill(self.actor)


def absorb(budget: LocalBudget, calls: int, usd: float) -> None:
    """Count ``calls`` and ``usd`` that were already checked against the limits elsewhere."""
    budget.settle(0.0, usd)
    try:
        budget.reserve(calls, 0.0)
    except BudgetExceeded:  # the wall-time limit refuses even calls already made; count them anyway
        with budget._lock:
            budget._calls += calls
