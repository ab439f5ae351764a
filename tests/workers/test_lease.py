"""The pieces that keep Ray trials off a round trip per call, without Ray: budget leases, the gate the engine
calls through, and the split of the per-model limit between workers."""

from __future__ import annotations

import asyncio

import pytest

from promptopt.engine import BudgetUse, Evaluator, LocalLimiter, Services
from promptopt.errors import BudgetExceeded
from promptopt.models import ScriptedBackend
from promptopt.spec import EvalSettings
from promptopt.workers import LeaseLedger, LeasePool, MeteredBackend, TrialGate, split_slots
from tests.engine.helpers import Exact, label_config, oracle, split_of


@pytest.mark.parametrize(
    ("concurrency", "trials", "expected"),
    [
        (64, [3, 1], [48, 16]),
        (64, [4, 4], [32, 32]),
        (2, [2, 2], [1, 1]),
        (3, [8, 1, 1], [1, 1, 1]),
        (5, [1], [5]),
        (7, [1, 1, 1], [3, 2, 2]),
    ],
)
def test_split_slots_add_up_to_the_limit_in_proportion_with_one_each_at_least(concurrency, trials, expected):
    assert split_slots(concurrency, trials) == expected


def test_split_slots_refuses_more_workers_than_slots():
    with pytest.raises(ValueError, match="3 workers cannot share 2 slots"):
        split_slots(2, [1, 1, 1])


def test_ledger_adds_at_most_half_of_the_rest_and_refuses_with_the_budget_message():
    ledger = LeaseLedger({"model_calls": 10}, BudgetUse(model_calls=2))
    first = ledger.lease(1, 0.0, extra_calls=20)
    assert (first.calls, ledger.used().model_calls) == (1 + 3, 6)  # 7 left after the one asked: 3 more
    assert ledger.lease(1, 0.0, extra_calls=20).calls == 1 + 1
    assert ledger.lease(1, 0.0, extra_calls=20).calls == 1  # the last calls go one at a time
    assert ledger.lease(1, 0.0).calls == 1
    refused = ledger.lease(1, 0.0)
    assert refused.calls == 0 and refused.refusal == "model-call budget of 10 calls is spent"
    ledger.give_back(2, 0.0)
    assert ledger.used().model_calls == 8 and ledger.lease(2, 0.0).refusal is None


def test_ledger_dollars_come_back_and_an_overrun_counts():
    ledger = LeaseLedger({"usd": 1.0}, BudgetUse())
    grant = ledger.lease(1, 0.1, extra_calls=4, extra_usd=0.4)
    assert grant.calls == 5 and grant.usd == pytest.approx(0.5)
    ledger.give_back(2, -0.05)  # two calls unspent, and the three sent cost 0.05 more than their leases
    assert ledger.used().model_calls == 3 and ledger.used().usd == pytest.approx(0.55)
    assert "dollar budget of $1 would be passed" in ledger.lease(1, 0.5).refusal


def test_ledger_tells_the_wall_time_left_and_refuses_after_it():
    ledger = LeaseLedger({"wall_s": 30.0}, BudgetUse(wall_s=20.0))
    assert 9.0 < ledger.lease(1, 0.0).wall_left_s <= 10.0
    spent = LeaseLedger({"wall_s": 30.0}, BudgetUse(wall_s=31.0))
    assert spent.lease(1, 0.0).refusal == "wall-time budget of 30 s is spent"


def remote(ledger: LeaseLedger, requests: list[tuple[int, int]]):
    """The ledger behind an async round trip, as a worker reaches the budget actor; records each request."""

    async def lease(calls, usd, *, extra_calls=0, extra_usd=0.0):
        requests.append((calls, extra_calls))
        await asyncio.sleep(0.002)
        return ledger.lease(calls, usd, extra_calls=extra_calls, extra_usd=extra_usd)

    return lease


async def one_trial(ledger, backend, requests, *, rows: int, slots: int = 8):
    """A trial as a worker runs it: an eval through the gate, then the unspent lease given back."""
    pool = LeasePool(remote(ledger, requests), expected=rows)
    gate = TrialGate(LocalLimiter(slots), pool)
    evaluator = Evaluator(
        Services(
            backend=MeteredBackend(backend),
            budget=gate,
            limiter=gate,
            settings=EvalSettings(concurrency=slots, retries=0),
        )
    )
    reviews = [(f"good film {i}", "positive") for i in range(rows)]
    try:
        return await evaluator.run(label_config(), split_of(reviews), [Exact()], name="t", dataset_hash="h")
    except BudgetExceeded as exc:
        return exc
    finally:
        ledger.give_back(*pool.drain())


def test_a_trial_leases_once_for_its_rows_and_gives_nothing_back_when_it_used_them():
    ledger, backend, requests = LeaseLedger({"model_calls": 1000}, BudgetUse()), ScriptedBackend(oracle), []
    result = asyncio.run(one_trial(ledger, backend, requests, rows=20))
    assert result.summary.objective == 1.0
    assert requests == [(1, 19)] and len(backend.calls) == 20 and ledger.used().model_calls == 20


def test_parallel_trials_on_leases_never_send_more_calls_than_the_budget():
    ledger, backend, requests = (
        LeaseLedger({"model_calls": 25}, BudgetUse()),
        ScriptedBackend(oracle, latency_s=0.01),
        [],
    )

    async def trials():
        return await asyncio.gather(*(one_trial(ledger, backend, requests, rows=12, slots=3) for _ in range(6)))

    results = asyncio.run(trials())
    stopped = [r for r in results if isinstance(r, BudgetExceeded)]
    assert stopped and all(str(r) == "model-call budget of 25 calls is spent" for r in stopped)
    # Never more than the budget; short of it by at most what a trial leased and had not spent when the
    # others were refused (a lease beyond the call that asked takes at most half of what is left).
    assert 20 <= len(backend.calls) <= 25
    assert ledger.used().model_calls == len(backend.calls)  # every unspent call came back


def test_a_dollar_budget_holds_on_the_estimates_and_settles_the_actual_cost():
    ledger = LeaseLedger({"usd": 0.035}, BudgetUse())
    backend = ScriptedBackend(oracle, cost_per_call=0.01)
    result = asyncio.run(one_trial(ledger, backend, [], rows=12, slots=1))
    assert isinstance(result, BudgetExceeded) and "dollar budget" in str(result)
    assert len(backend.calls) == 3 and ledger.used().usd == pytest.approx(0.03)


def test_the_gate_refuses_a_reserve_that_no_slot_took():
    gate = TrialGate(LocalLimiter(1), LeasePool(remote(LeaseLedger({}, BudgetUse()), []), expected=1))
    with pytest.raises(RuntimeError, match="without a call taken by TrialGate.slot"):
        gate.reserve(1, 0.0)
