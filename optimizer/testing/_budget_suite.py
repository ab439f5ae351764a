"""The contracts of :class:`promptopt.engine.Budget` and :class:`promptopt.engine.CallLimiter` as test classes to
run against any implementation.

A budget is tested the way the engine spends it (``promptopt.engine.Evaluator``): each trial gets a
:class:`Lane` (the budget and limiter of its services, and the backend wrapper the budget needs), and sends
each call as *estimate, slot, reserve, send, settle* (the actual cost, or nothing for a failed call). Trials
run concurrently on one event loop, or in threads. A plain :class:`~promptopt.engine.Budget` that every trial
shares as is (``LocalBudget``) is wrapped in :class:`PlainBudget`; one that trials reach through a gate of their
own (the Ray workers' leases) implements :class:`SharedBudget`.
"""

from __future__ import annotations

import abc
import asyncio
import math
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from promptopt.engine import Budget, BudgetUse, CallLimiter, LocalLimiter
from promptopt.errors import BudgetExceeded, ModelCallError
from promptopt.models import ModelBackend, ModelRequest, ModelResponse

LANE_SLOTS = 64  # a plain budget's lanes get a limiter this wide: budget tests are not about the limit
MODEL = "contract/model"


def _same(backend: ModelBackend) -> ModelBackend:
    return backend


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Lane:
    """What one trial spends through: its services' ``budget`` and ``limiter``, ``wrap`` (how the trial's
    backend is wrapped, for a budget that reads estimates from it) and ``end`` (awaited when the trial ends,
    e.g. to give an unspent lease back)."""

    budget: Budget
    limiter: CallLimiter
    wrap: Callable[[ModelBackend], ModelBackend] = _same
    end: Callable[[], Awaitable[None]] = _nothing


class SharedBudget(abc.ABC):
    """One budget, opened with its limits, shared by the trials that spend from it; a context manager that
    :meth:`close` s it."""

    @abc.abstractmethod
    def lane(self, calls: int) -> Lane:
        """A new trial's lane; ``calls`` is how many it expects to send (a hint, e.g. for a lease's size)."""

    @abc.abstractmethod
    async def used(self) -> BudgetUse:
        """What the whole budget has counted, once every lane has ended."""

    def close(self) -> None:
        """Release what the budget holds; default does nothing."""

    def __enter__(self) -> SharedBudget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlainBudget(SharedBudget):
    """A :class:`~promptopt.engine.Budget` used as is by every trial, each with a limiter of its own."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    def lane(self, calls: int) -> Lane:
        return Lane(self.budget, LocalLimiter(LANE_SLOTS))

    async def used(self) -> BudgetUse:
        return self.budget.used()


OpenBudget = Callable[..., SharedBudget]  # open_budget(model_calls=None, usd=None, wall_s=None)
MakeLimiter = Callable[[int], CallLimiter]


@dataclass
class Meter(ModelBackend):
    """A backend whose calls are estimated at ``estimate`` dollars and cost ``actual``; the calls numbered in
    ``failing`` (1, 2, ... in the order sent) fail. Counts what was sent and the calls in flight per model."""

    estimate: float = 0.0
    actual: float = 0.0
    latency_s: float = 0.0
    failing: frozenset[int] = frozenset()
    sent: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    peak_total: int = 0

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return self.estimate

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.sent += 1
        number = self.sent
        async with self.inside(request.model):
            await asyncio.sleep(self.latency_s)
        if number in self.failing:
            raise ModelCallError(f"call {number} fails as scripted", retryable=False)
        return ModelResponse(text="ok", cost_usd=self.actual)

    @asynccontextmanager
    async def inside(self, model: str) -> AsyncIterator[None]:
        """Counted as one call in flight for ``model`` while inside."""
        self.in_flight[model] += 1
        self.peak[model] = max(self.peak[model], self.in_flight[model])
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        try:
            yield
        finally:
            self.in_flight[model] -= 1


def request(model: str = MODEL) -> ModelRequest:
    return ModelRequest(model=model, messages=({"role": "user", "content": "hi"},))


async def send(lane: Lane, backend: ModelBackend, model: str = MODEL) -> ModelResponse:
    """One call as the engine sends it (``Evaluator._call``, without retries).

    Raises:
        BudgetExceeded: the budget refused the call (it was not sent).
        ModelCallError: the call failed (its estimate was settled to nothing).
    """
    estimate = backend.estimate_cost(request(model), 16)
    try:
        async with lane.limiter.slot(model):
            lane.budget.reserve(1, estimate)
            response = await backend.complete(request(model))
    except ModelCallError:
        lane.budget.settle(estimate, 0.0)
        raise
    lane.budget.settle(estimate, response.cost_usd)
    return response


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0
    refused: int = 0


async def trial(shared: SharedBudget, meter: Meter, calls: int, *, at_once: bool = True) -> Tally:
    """A trial sending ``calls`` calls on a lane of its own (concurrently, or one after another), then ending."""
    lane, tally = shared.lane(calls), Tally()
    backend = lane.wrap(meter)

    async def one() -> None:
        try:
            await send(lane, backend)
            tally.sent += 1
        except BudgetExceeded:
            tally.refused += 1
        except ModelCallError:
            tally.failed += 1

    try:
        if at_once:
            await asyncio.gather(*(one() for _ in range(calls)))
        else:
            for _ in range(calls):
                await one()
    finally:
        await lane.end()
    return tally


async def together(*coros: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*coros))


def run(coro: Awaitable[Any], timeout_s: float = 10.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


def trials_together(shared: SharedBudget, meter: Meter, trials: int, calls: int) -> list[Tally]:
    tallies: list[Tally] = run(together(*(trial(shared, meter, calls) for _ in range(trials))), timeout_s=60.0)
    return tallies


def trials_in_threads(shared: SharedBudget, trials: int, calls: int) -> list[Tally]:
    """Each trial on its own thread and event loop, with a backend of its own."""
    tallies: list[Tally] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            tallies.append(asyncio.run(trial(shared, Meter(), calls, at_once=False)))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(trials)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return tallies


def used(shared: SharedBudget) -> BudgetUse:
    return asyncio.run(shared.used())


def close_to(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


class BudgetContract:
    """The :class:`~promptopt.engine.Budget` contract; needs an ``open_budget`` fixture:
    ``open_budget(model_calls=None, usd=None, wall_s=None)`` returns a new :class:`SharedBudget` with those
    limits (``None``: unlimited).

    A budget refuses a call (:class:`~promptopt.errors.BudgetExceeded`, nothing sent) before it would pass a
    limit and otherwise counts it; ``settle`` replaces the estimate with the actual cost (nothing for a failed
    call, which still counts as a call); concurrent trials, on one loop or on threads, never pass a limit
    together; ``used()`` adds up to what was sent.
    """

    def test_a_new_budget_has_spent_nothing(self, open_budget: OpenBudget) -> None:
        with open_budget(model_calls=10, usd=1.0) as shared:
            spent = used(shared)
        assert (spent.model_calls, spent.usd) == (0, 0.0), spent

    def test_the_call_limit_admits_that_many_calls_and_refuses_the_next_before_sending(
        self, open_budget: OpenBudget
    ) -> None:
        meter = Meter()
        with open_budget(model_calls=5) as shared:
            tally = asyncio.run(trial(shared, meter, 8, at_once=False))
            spent = used(shared)
        assert (tally.sent, tally.refused) == (5, 3), tally
        assert meter.sent == 5, f"{meter.sent} calls reached the model; a refused call must not be sent"
        assert spent.model_calls == 5, spent

    def test_the_dollar_limit_refuses_on_the_estimate(self, open_budget: OpenBudget) -> None:
        meter = Meter(estimate=0.01, actual=0.01)
        with open_budget(usd=0.035) as shared:
            tally = asyncio.run(trial(shared, meter, 6, at_once=False))
            spent = used(shared)
        assert (tally.sent, tally.refused, meter.sent) == (3, 3, 3), tally  # a 4th would make $0.04
        assert close_to(spent.usd, 0.03) and spent.model_calls == 3, spent

    def test_settle_replaces_the_estimate_with_the_actual_cost(self, open_budget: OpenBudget) -> None:
        # $0.02 estimated, $0.005 paid: a call goes while spent + 0.02 <= 0.0575, i.e. 8 calls (not 2).
        meter = Meter(estimate=0.02, actual=0.005)
        with open_budget(usd=0.0575) as shared:
            tally = asyncio.run(trial(shared, meter, 12, at_once=False))
            spent = used(shared)
        assert (tally.sent, tally.refused) == (8, 4), tally
        assert close_to(spent.usd, 8 * 0.005) and spent.model_calls == 8, spent

    def test_a_failed_call_counts_as_a_call_and_costs_nothing(self, open_budget: OpenBudget) -> None:
        meter = Meter(estimate=0.01, actual=0.01, failing=frozenset({2, 4, 6}))
        with open_budget(model_calls=100, usd=1.0) as shared:
            tally = asyncio.run(trial(shared, meter, 6, at_once=False))
            spent = used(shared)
        assert (tally.sent, tally.failed) == (3, 3), tally
        assert spent.model_calls == 6 and close_to(spent.usd, 0.03), spent

    def test_the_wall_time_limit_refuses_once_it_has_passed(self, open_budget: OpenBudget) -> None:
        meter = Meter()

        async def late_call(shared: SharedBudget) -> tuple[Tally, Tally]:
            lane = shared.lane(2)
            backend = lane.wrap(meter)
            try:
                first = await _one(lane, backend)
                await asyncio.sleep(1.3)
                return first, await _one(lane, backend)
            finally:
                await lane.end()

        with open_budget(wall_s=1.0) as shared:
            first, second = asyncio.run(late_call(shared))
            spent = used(shared)
        assert (first.sent, second.refused) == (1, 1), (first, second)
        assert meter.sent == 1 and spent.model_calls == 1, spent

    def test_concurrent_trials_never_pass_the_call_limit(self, open_budget: OpenBudget) -> None:
        meter = Meter(latency_s=0.005)
        with open_budget(model_calls=25) as shared:
            tallies = trials_together(shared, meter, trials=6, calls=12)
            spent = used(shared)
        assert meter.sent <= 25, f"{meter.sent} calls sent on a budget of 25"
        assert sum(t.sent for t in tallies) == meter.sent and sum(t.refused for t in tallies) == 72 - meter.sent
        assert spent.model_calls == meter.sent, f"the budget counted {spent.model_calls}, {meter.sent} were sent"

    def test_concurrent_trials_never_pass_the_dollar_limit(self, open_budget: OpenBudget) -> None:
        meter = Meter(estimate=0.01, actual=0.01, latency_s=0.005)
        with open_budget(usd=0.1) as shared:
            trials_together(shared, meter, trials=5, calls=6)
            spent = used(shared)
        assert meter.sent <= 10, f"{meter.sent} calls of $0.01 sent on a budget of $0.10"
        assert close_to(spent.usd, meter.sent * 0.01) and spent.model_calls == meter.sent, spent

    def test_trials_on_threads_never_pass_the_call_limit(self, open_budget: OpenBudget) -> None:
        with open_budget(model_calls=30) as shared:
            tallies = trials_in_threads(shared, trials=4, calls=12)
            spent = used(shared)
        sent = sum(t.sent for t in tallies)
        assert sent <= 30 and sum(t.refused for t in tallies) == 48 - sent, tallies
        assert spent.model_calls == sent, f"the budget counted {spent.model_calls}, {sent} were sent"


async def _one(lane: Lane, backend: ModelBackend) -> Tally:
    tally = Tally()
    try:
        await send(lane, backend)
        tally.sent += 1
    except BudgetExceeded:
        tally.refused += 1
    return tally


async def hold(limiter: CallLimiter, meter: Meter, model: str, seconds: float) -> None:
    """Hold a slot of ``model`` for ``seconds``, counted as in flight."""
    async with limiter.slot(model), meter.inside(model):
        await asyncio.sleep(seconds)


async def fail_inside(limiter: CallLimiter, model: str) -> None:
    async with limiter.slot(model):
        raise ModelCallError("fails while holding its slot", retryable=False)


class LimiterContract:
    """The :class:`~promptopt.engine.CallLimiter` contract; needs a ``make_limiter`` fixture: ``make_limiter(n)``
    returns a new limiter of ``n`` calls in flight per model.

    ``slot(model)`` is an async context manager; no more than the limit are inside at once for one model, and
    the limit is reached when that many wait; models do not share slots; a slot comes back when its body
    raises or is cancelled, and a cancelled wait takes none.
    """

    models = ("contract/model-a", "contract/model-b")

    def test_no_more_than_the_limit_are_in_flight_and_the_limit_is_reached(self, make_limiter: MakeLimiter) -> None:
        limiter, meter = make_limiter(3), Meter()
        run(together(*(hold(limiter, meter, self.models[0], 0.02) for _ in range(12))))
        assert meter.peak[self.models[0]] == 3, f"{meter.peak[self.models[0]]} in flight at once, limit 3"

    def test_each_model_has_a_limit_of_its_own(self, make_limiter: MakeLimiter) -> None:
        limiter, meter = make_limiter(2), Meter()
        run(together(*(hold(limiter, meter, m, 0.02) for m in self.models for _ in range(6))))
        assert [meter.peak[m] for m in self.models] == [2, 2], meter.peak
        assert meter.peak_total == 4, f"{meter.peak_total} in flight over two models of limit 2: slots are shared"

    def test_a_body_that_raises_gives_its_slot_back(self, make_limiter: MakeLimiter) -> None:
        limiter, meter = make_limiter(2), Meter()

        async def scenario() -> None:
            for _ in range(5):
                try:
                    await fail_inside(limiter, self.models[0])
                except ModelCallError:
                    pass
            await asyncio.gather(*(hold(limiter, meter, self.models[0], 0.02) for _ in range(4)))

        run(scenario(), timeout_s=5.0)
        assert meter.peak[self.models[0]] == 2, meter.peak

    def test_cancelled_holders_and_waiters_give_their_slots_back(self, make_limiter: MakeLimiter) -> None:
        limiter, meter = make_limiter(1), Meter()
        model = self.models[0]

        async def scenario() -> None:
            holder = asyncio.create_task(hold(limiter, meter, model, 30.0))
            await asyncio.sleep(0.05)
            waiter = asyncio.create_task(hold(limiter, meter, model, 30.0))
            await asyncio.sleep(0.05)
            for task in (waiter, holder):
                task.cancel()
            await asyncio.gather(holder, waiter, return_exceptions=True)
            await asyncio.wait_for(hold(limiter, meter, model, 0.0), 2.0)  # the one slot is free again

        run(scenario(), timeout_s=10.0)
        assert meter.peak[model] == 1, meter.peak
