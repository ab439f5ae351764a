"""The Budget and CallLimiter contracts (promptopt.testing.BudgetContract, LimiterContract) on the in-process
implementations, LocalBudget and LocalLimiter (one limit for every model, or a limit per model); and a budget
and a limiter broken on purpose, which the suites catch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from promptopt.engine import Budget, BudgetUse, CallLimiter, LocalBudget, LocalLimiter
from promptopt.errors import BudgetExceeded
from promptopt.testing import BudgetContract, LimiterContract, PlainBudget, SharedBudget


def open_local_budget(**limits: float | None) -> SharedBudget:
    return PlainBudget(LocalBudget(**limits))  # type: ignore[arg-type]


@pytest.fixture
def open_budget():
    return open_local_budget


@pytest.fixture(params=["one-limit", "per-model"])
def make_limiter(request: pytest.FixtureRequest):
    if request.param == "one-limit":
        return LocalLimiter
    return lambda limit: LocalLimiter(1, per_model=dict.fromkeys(LimiterContract.models, limit))


class TestLocalBudget(BudgetContract):
    pass


class TestLocalLimiter(LimiterContract):
    pass


class OffByOneBudget(Budget):
    """Checks the call limit after counting the call against the calls before it: one call too many."""

    def __init__(self, *, model_calls: int | None = None, usd: float | None = None, wall_s: float | None = None):
        self.max_calls, self.calls, self.usd = model_calls, 0, 0.0

    def reserve(self, calls: int, usd: float) -> None:
        if self.max_calls is not None and self.calls > self.max_calls:
            raise BudgetExceeded("spent")
        self.calls += calls
        self.usd += usd

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self.usd += actual_usd - reserved_usd

    def used(self) -> BudgetUse:
        return BudgetUse(model_calls=self.calls, usd=self.usd)


class OpenDoor(CallLimiter):
    """Never waits."""

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        yield


@pytest.mark.parametrize(
    "check",
    [
        BudgetContract.test_the_call_limit_admits_that_many_calls_and_refuses_the_next_before_sending,
        BudgetContract.test_concurrent_trials_never_pass_the_call_limit,
    ],
)
def test_the_suite_catches_a_budget_that_overspends(check) -> None:
    with pytest.raises(AssertionError):
        check(BudgetContract(), lambda **limits: PlainBudget(OffByOneBudget(**limits)))


def test_the_suite_catches_a_limiter_that_lets_every_call_through() -> None:
    with pytest.raises(AssertionError):
        LimiterContract().test_no_more_than_the_limit_are_in_flight_and_the_limit_is_reached(lambda limit: OpenDoor())
