"""The Budget and CallLimiter contracts (promptopt.testing) on the budget the Ray workers spend: each trial
spends through a TrialGate over a LeasePool (its MeteredBackend tells the gate each estimate), leasing from a
LeaseLedger (in this process) or from a BudgetActor on a real local Ray runtime, and gives its unspent lease
back when it ends, as TrialWorker.run does."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import ray  # noqa: TID251 (tests of the Ray adapter)

from promptopt.engine import BudgetUse, CallLimiter, LocalLimiter
from promptopt.testing import BudgetContract, Lane, LimiterContract, SharedBudget
from promptopt.workers import BudgetActor, LeaseLedger, LeasePool, MeteredBackend, TrialGate

pytestmark = pytest.mark.slow

SLOTS = 64  # a worker's share of the per-model limit, wide enough not to matter to the budget tests


@pytest.fixture(scope="module")
def ray_runtime():
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


class LeasedBudget(SharedBudget):
    """Trials lease from ``ledger`` (a LeaseLedger) or ``actor`` (a BudgetActor handle). The ledger's methods
    run one at a time, as in the actor (trials on threads would otherwise race on it)."""

    def __init__(self, *, ledger: LeaseLedger | None = None, actor: Any = None) -> None:
        self.ledger, self.actor = ledger, actor
        self._one_at_a_time = threading.Lock()

    async def lease(self, calls: int, usd: float, **extra: Any) -> Any:
        if self.ledger is not None:
            with self._one_at_a_time:
                return self.ledger.lease(calls, usd, **extra)
        return await self.actor.lease.remote(calls, usd, **extra)

    async def give_back(self, calls: int, usd: float) -> None:
        if self.ledger is not None:
            with self._one_at_a_time:
                self.ledger.give_back(calls, usd)
        else:
            await self.actor.give_back.remote(calls, usd, 0)  # batch 0: the actor's batch until a restart

    def lane(self, calls: int) -> Lane:
        pool = LeasePool(self.lease, expected=calls)
        gate = TrialGate(LocalLimiter(SLOTS), pool)

        async def end() -> None:
            await self.give_back(*pool.drain())

        return Lane(budget=gate, limiter=gate, wrap=MeteredBackend, end=end)

    async def used(self) -> BudgetUse:
        return self.ledger.used() if self.ledger is not None else await self.actor.used.remote()

    def close(self) -> None:
        if self.actor is not None:
            ray.kill(self.actor)


def open_leased(where: str, **limits: Any) -> LeasedBudget:
    limits = {"model_calls": None, "usd": None, "wall_s": None} | limits
    if where == "ledger":
        return LeasedBudget(ledger=LeaseLedger(limits, BudgetUse()))
    actor = BudgetActor.remote(limits, BudgetUse())
    ray.get(actor.used.remote(), timeout=60)  # started: a test's timings must not include the actor's start
    return LeasedBudget(actor=actor)


@pytest.fixture(params=["ledger", "actor"])
def where(request: pytest.FixtureRequest) -> str:
    if request.param == "actor":
        request.getfixturevalue("ray_runtime")
    return request.param


@pytest.fixture
def open_budget(where: str):
    return lambda **limits: open_leased(where, **limits)


@pytest.fixture
def make_limiter(where: str):
    """A worker's gate as a limiter: its share of the limit, then a call out of an unlimited lease."""
    budgets: list[LeasedBudget] = []

    def make(limit: int) -> CallLimiter:
        budgets.append(open_leased(where))
        pool = LeasePool(budgets[-1].lease, expected=1000)  # one lease for every call of a test
        return TrialGate(LocalLimiter(limit), pool)

    yield make
    for budget in budgets:
        budget.close()


class TestLeasedBudget(BudgetContract):
    pass


class TestTrialGateLimiter(LimiterContract):
    pass
