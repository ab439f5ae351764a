"""Custom scorers run in worker processes: a hang, a crash or a bad value fails only its row."""

import asyncio
import time

import pytest

from promptopt.errors import ScorerError
from promptopt.scorers import CustomScorer
from tests.scorers.helpers import HERE, row, score, spec_of


def custom(build, name, **extra):
    return build({"type": "custom", "function": f"scorer_fns:{name}", **extra})


def test_returns_the_functions_value(build):
    scorer = custom(build, "matches")
    assert [r.value for r in score(scorer, row(" PARIS", "paris"), row("Rome", "paris"))] == [1.0, 0.0]


def test_passes_only_the_arguments_the_function_declares(build):
    assert score(custom(build, "every_argument"), row("x", "y")).value == 1.0
    scorer = custom(build, "reads_metadata")
    assert score(scorer, row("x", metadata={"weight": 0.5}, input={"scale": 0.5})).value == 0.25


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("too_big", "1.5"),
        ("not_a_number", "str"),
        ("raises", "boom in the scorer"),
    ],
)
def test_bad_results_and_exceptions_are_scorer_errors(build, name, message):
    with pytest.raises(ScorerError, match=message):
        score(custom(build, name), row("x"))


def test_a_hanging_scorer_times_out_and_the_next_row_still_works():
    scorer = CustomScorer(
        spec_of({"type": "custom", "function": "scorer_fns:sleepy", "timeout_s": 1}), base_dir=HERE, workers=1
    )

    async def go():
        started = time.monotonic()
        with pytest.raises(ScorerError, match="timed out after 1 s"):
            await scorer.score(row("x", input={"sleep": 60}))
        assert time.monotonic() - started < 5
        # The only worker was killed; the next row gets a fresh one.
        assert (await scorer.score(row("x", input={"sleep": 0}))).value == 1.0
        await scorer.aclose()

    asyncio.run(go())


def test_the_documented_hang_fails_within_its_timeout(build):
    started = time.monotonic()
    with pytest.raises(ScorerError, match="timed out"):
        score(custom(build, "hang", timeout_s=1), row("x"))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("name", "reason"), [("exits", "exit code 1"), ("segfault", "SIGSEGV")])
def test_a_crashing_worker_fails_its_row_and_is_replaced(name, reason):
    scorer = CustomScorer(spec_of({"type": "custom", "function": f"scorer_fns:{name}"}), base_dir=HERE, workers=1)

    async def go():
        with pytest.raises(ScorerError, match=reason):
            await scorer.score(row("x"))
        with pytest.raises(ScorerError, match=reason):  # the replacement works, and crashes again
            await scorer.score(row("x"))
        await scorer.aclose()

    asyncio.run(go())


def test_a_timeout_fails_only_its_own_row():
    scorer = CustomScorer(
        spec_of({"type": "custom", "function": "scorer_fns:sleepy", "timeout_s": 1}), base_dir=HERE, workers=2
    )
    rows = [row("x", input={"sleep": 60})] + [row("x", input={"sleep": 0.01}) for _ in range(10)]

    async def go():
        outcomes = await asyncio.gather(*(scorer.score(r) for r in rows), return_exceptions=True)
        await scorer.aclose()
        return outcomes

    started = time.monotonic()
    hung, *fast = asyncio.run(go())
    assert isinstance(hung, ScorerError)
    assert [r.value for r in fast] == [1.0] * 10
    assert time.monotonic() - started < 5


def test_workers_are_long_lived():
    scorer = CustomScorer(spec_of({"type": "custom", "function": "scorer_fns:pid"}), base_dir=HERE, workers=2)

    async def go():
        values = await asyncio.gather(*(scorer.score(row("x")) for _ in range(30)))
        await scorer.aclose()
        return values

    # 30 rows ran in at most two processes (the value is the worker's pid modulo 1000).
    assert len({r.value for r in asyncio.run(go())}) <= 2


def test_an_unimportable_function_fails_every_row_fast_with_the_reason(build):
    scorer = build({"type": "custom", "function": "no_such_module:f"})
    with pytest.raises(ScorerError, match="No module named 'no_such_module'"):
        score(scorer, row("x"))
    started = time.monotonic()
    with pytest.raises(ScorerError, match="no_such_module"):
        score(scorer, row("x"))
    assert time.monotonic() - started < 0.5  # remembered, not retried on every row


def test_a_function_needing_an_unknown_argument_is_rejected(build):
    with pytest.raises(ScorerError, match="reference"):
        score(custom(build, "needs_unknown"), row("x"))


def test_base_dir_decides_where_the_module_is_found(tmp_path):
    (tmp_path / "elsewhere.py").write_text("def always(): return 0.25\n")
    scorer = CustomScorer(spec_of({"type": "custom", "function": "elsewhere:always"}), base_dir=tmp_path)
    assert score(scorer, row("x")).value == 0.25
    asyncio.run(scorer.aclose())


def test_aclose_stops_the_workers_and_later_rows_fail(build):
    scorer = custom(build, "matches")
    assert score(scorer, row("a", "a")).value == 1.0
    procs = [w._proc for w in scorer._pool._workers if w._proc is not None]
    assert procs
    asyncio.run(scorer.aclose())
    assert all(p.poll() is not None for p in procs)
    with pytest.raises(ScorerError, match="closed"):
        score(scorer, row("a", "a"))
    asyncio.run(scorer.aclose())  # twice is fine
