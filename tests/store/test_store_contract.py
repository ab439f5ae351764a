"""Contract of :class:`promptopt.store.Store`, run on every backend (see conftest.store_url)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

import promptopt.store._store as store_module
from promptopt.engine._result import EvalSummary, RowResult
from promptopt.errors import NotFound
from promptopt.store import ExperimentRecord, Store, get_store

EVAL = {"config_hash": "c0ffee", "model": "fake/echo", "split": "dev", "dataset_hash": "da7a"}


def begin(store: Store, key: str = "k1", **fields: Any) -> tuple[str, list[RowResult]]:
    values = {"name": "qa", "config": {"model": "fake/echo"}, **EVAL, **fields}
    return store.begin_experiment(key=key, **values)


def row(case_id: str, repeat: int = 0, **fields: Any) -> RowResult:
    values = {"input": {"q": case_id}, "scores": {"em": 1.0}, "objective": 1.0, **fields}
    return RowResult(case_id=case_id, repeat=repeat, **values)


def summary(rows: list[RowResult]) -> EvalSummary:
    return EvalSummary.from_rows(rows, ["em"], model_calls=len(rows), wall_s=1.5)


def test_experiment_and_rows_round_trip(store: Store) -> None:
    config = {
        "z_first": "ordre préservé ✓",
        "messages": [{"role": "system", "content": "日本語"}],
        "params": {"temperature": 0.0, "stop": None},
    }
    rows = [
        RowResult(
            case_id="α-1",
            repeat=2,
            input={"q": "héllo 👋", "ctx": None, "nested": {"a": [1, {"b": None}]}},
            expected={"answer": ["x", 2.5, None, True]},
            output='{"answer": "x"}\nüber',
            parsed={"answer": "x"},
            scores={"em": 1.0, "f1": 0.25},
            objective=0.625,
            latency_s=1.25,
            task_prompt_tokens=11,
            task_completion_tokens=7,
            scorer_prompt_tokens=5,
            scorer_completion_tokens=3,
            task_cost_usd=0.0012,
            scorer_cost_usd=0.0004,
            cache_hit=True,
        ),
        RowResult(
            case_id="b",
            input={},
            expected=None,
            output="garbled",
            parse_error="not JSON: line 1",
            scores={},
            objective=None,
            error="ModelCallError: 500 after 3 retries",
        ),
        RowResult(
            case_id="c", input={"q": ""}, expected="null", parsed=[1, [2, [3]]], scores={"em": 0.0}, objective=0.0
        ),
    ]
    experiment_id, resumed = begin(store, name="qa—ünïcode", config=config, run_id="run-1", trial_number=3)
    assert resumed == []
    store.add_rows(experiment_id, rows)
    assert store.get_rows(experiment_id) == rows

    store.finish_experiment(experiment_id, summary(rows))
    record = store.get_experiment(experiment_id)
    assert (record.id, record.key, record.name) == (experiment_id, "k1", "qa—ünïcode")
    assert record.status == "finished"
    assert record.config == config and list(record.config) == list(config)
    assert (record.config_hash, record.model, record.split, record.dataset_hash) == tuple(EVAL.values())
    assert (record.run_id, record.trial_number, record.error_message) == ("run-1", 3, None)
    assert record.summary == summary(rows)
    assert record.created_at.tzinfo == UTC and record.finished_at is not None
    assert record.created_at <= record.finished_at
    result = store.get_result(experiment_id)
    assert (result.experiment_id, result.status, result.rows) == (experiment_id, "finished", tuple(rows))
    assert (result.config_hash, result.split, result.dataset_hash) == ("c0ffee", "dev", "da7a")
    assert result.summary == summary(rows)


def test_non_finite_floats_read_back_the_same_on_every_backend(store: Store) -> None:
    experiment_id, _ = begin(store)
    store.add_rows(experiment_id, [row("a", scores={"em": float("inf")}, objective=float("nan"))])
    [stored] = store.get_rows(experiment_id)
    assert stored.scores == {"em": float("inf")} and stored.objective is None
    store.finish_experiment(experiment_id, summary([row("a", objective=float("nan"))]))
    stored_summary = store.get_experiment(experiment_id).summary
    assert stored_summary is not None and stored_summary.objective != stored_summary.objective  # NaN


def test_begin_resumes_a_running_experiment_with_its_recorded_rows(store: Store) -> None:
    experiment_id, _ = begin(store)
    store.add_rows(experiment_id, [row("a"), row("b")])
    store.add_rows(experiment_id, [row("a", repeat=1)])
    again, resumed = begin(store)
    assert again == experiment_id
    assert resumed == [row("a"), row("b"), row("a", repeat=1)]
    other, fresh = begin(store, key="k2")
    assert other != experiment_id and fresh == []


@pytest.mark.parametrize("status", ["finished", "failed"])
def test_begin_after_close_starts_a_new_experiment(store: Store, status: str) -> None:
    experiment_id, _ = begin(store)
    store.add_rows(experiment_id, [row("a")])
    store.finish_experiment(experiment_id, summary([row("a")]), status=status)
    new_id, resumed = begin(store)
    assert new_id != experiment_id and resumed == []
    assert store.get_experiment(new_id).status == "running"
    assert store.get_experiment(experiment_id).status == status


def test_begin_refuses_to_resume_a_key_with_another_config(store: Store) -> None:
    experiment_id, _ = begin(store)
    with pytest.raises(ValueError, match=f"{experiment_id}.*config_hash, dataset_hash"):
        begin(store, config_hash="other", dataset_hash="other")
    assert [e.id for e in store.list_experiments()] == [experiment_id]


def test_duplicate_rows_are_skipped_and_the_first_record_wins(store: Store) -> None:
    experiment_id, _ = begin(store)
    store.add_rows(experiment_id, [row("a", objective=1.0)])
    store.add_rows(experiment_id, [row("a", objective=0.0), row("b"), row("b", objective=0.5)])
    assert store.get_rows(experiment_id) == [row("a", objective=1.0), row("b")]
    store.add_rows(experiment_id, [])
    assert len(store.get_rows(experiment_id)) == 2


def test_a_closed_experiment_never_changes(store: Store) -> None:
    experiment_id, _ = begin(store)
    store.add_rows(experiment_id, [row("a")])
    store.finish_experiment(experiment_id, summary([row("a")]))
    before = store.get_experiment(experiment_id)
    with pytest.raises(ValueError, match="finished; a closed experiment never changes"):
        store.add_rows(experiment_id, [row("b")])
    with pytest.raises(ValueError, match="finished"):
        store.finish_experiment(experiment_id, summary([]), status="failed", error_message="late")
    assert store.get_experiment(experiment_id) == before
    assert store.get_rows(experiment_id) == [row("a")]


def test_a_failed_eval_is_recorded_as_failed(store: Store) -> None:
    experiment_id, _ = begin(store)
    with pytest.raises(ValueError, match="'finished' or 'failed'"):
        store.finish_experiment(experiment_id, summary([]), status="done")
    assert store.get_experiment(experiment_id).status == "running"
    rows = [row("a", error="timeout", objective=None)]
    store.add_rows(experiment_id, rows)
    store.finish_experiment(experiment_id, summary(rows), status="failed", error_message="error rate 100% > 20%")
    record = store.get_experiment(experiment_id)
    assert (record.status, record.error_message) == ("failed", "error rate 100% > 20%")
    assert store.get_result(experiment_id).status == "failed"


def test_unknown_ids_raise_not_found_naming_the_id(store: Store) -> None:
    known, _ = begin(store)
    unknown = "f" * 32 if known[0] != "f" else "0" * 32
    for call in (store.get_experiment, store.get_rows, store.get_result):
        with pytest.raises(NotFound, match=unknown):
            call(unknown)
    with pytest.raises(NotFound, match=unknown):
        store.add_rows(unknown, [row("a")])
    with pytest.raises(NotFound, match=unknown):
        store.finish_experiment(unknown, summary([]))
    with pytest.raises(NotFound, match="'abc'.*at least 6"):
        store.get_experiment("abc")
    with pytest.raises(NotFound, match=f"no experiment id starts with '{unknown[:8]}'"):
        store.get_experiment(unknown[:8])


def test_a_running_experiment_has_no_result_yet(store: Store) -> None:
    experiment_id, _ = begin(store)
    with pytest.raises(NotFound, match=f"{experiment_id} is still running"):
        store.get_result(experiment_id)


def test_reads_accept_a_unique_id_prefix(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["abcdef" + "0" * 26, "abcdef" + "1" * 26, "123456" + "0" * 26])
    monkeypatch.setattr(store_module, "_new_id", lambda: next(ids))
    first, _ = begin(store, key="a")
    second, _ = begin(store, key="b")
    third, _ = begin(store, key="c")
    store.add_rows(third, [row("x")])
    assert store.get_experiment("123456").id == third
    assert store.get_experiment("123456000").id == third
    assert store.get_experiment("ABCDEF1").id == second
    assert store.get_rows("1234560") == [row("x")]
    with pytest.raises(NotFound, match=f"'abcdef' is ambiguous .*{first}.*{second}.*more characters"):
        store.get_experiment("abcdef")
    with pytest.raises(NotFound, match="at least 6"):
        store.get_experiment("12345")
    with pytest.raises(NotFound, match="full id"):
        store.add_rows("1234560", [row("y")])


def test_list_is_newest_first_and_filters_by_name_and_run(store: Store) -> None:
    created = [
        begin(store, key=f"k{i}", name=name, run_id=run)[0]
        for i, (name, run) in enumerate([("qa", None), ("qa", "r1"), ("sum", "r1"), ("qa", "r2")])
    ]
    assert [e.id for e in store.list_experiments()] == created[::-1]
    assert [e.id for e in store.list_experiments(name="qa")] == [created[3], created[1], created[0]]
    assert [e.id for e in store.list_experiments(run_id="r1")] == [created[2], created[1]]
    assert [e.id for e in store.list_experiments(name="qa", run_id="r1")] == [created[1]]
    assert [e.id for e in store.list_experiments(limit=2)] == [created[3], created[2]]
    assert store.list_experiments(name="nope") == []


def test_rows_are_durable_across_store_instances(store: Store, store_url: str) -> None:
    experiment_id, _ = begin(store)
    store.add_rows(experiment_id, [row("a"), row("b")])
    other = get_store(store_url)
    try:
        assert begin(other) == (experiment_id, [row("a"), row("b")])
        assert other.get_rows(experiment_id) == [row("a"), row("b")]
    finally:
        other.dispose()


def test_concurrent_add_rows_from_8_threads_lose_nothing(store: Store) -> None:
    experiment_id, _ = begin(store)
    barrier = threading.Barrier(8)

    def add(thread: int) -> None:
        barrier.wait()
        for batch in range(5):
            # Every thread also records the shared case: one record survives, and no thread fails on it.
            rows = [row(f"t{thread}-b{batch}-{i}") for i in range(10)] + [row("shared")]
            store.add_rows(experiment_id, rows)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(8)))
    case_ids = [r.case_id for r in store.get_rows(experiment_id)]
    assert len(case_ids) == 8 * 5 * 10 + 1
    expected = {f"t{t}-b{b}-{i}" for t in range(8) for b in range(5) for i in range(10)}
    assert set(case_ids) == expected | {"shared"}


def test_concurrent_begins_with_one_key_get_one_experiment(store: Store) -> None:
    barrier = threading.Barrier(8)

    def start(_: int) -> str:
        barrier.wait()
        return begin(store, key="same")[0]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(start, range(8)))
    assert len(ids) == 1
    assert [e.id for e in store.list_experiments()] == list(ids)


def test_a_record_checks_that_only_closed_experiments_have_a_summary() -> None:
    fields = {"id": "0" * 32, "key": "k", "name": "qa", "config": {}, **EVAL, "created_at": datetime.now(UTC)}
    with pytest.raises(ValidationError, match="a finished experiment must have finished_at and summary"):
        ExperimentRecord(status="finished", **fields)
    with pytest.raises(ValidationError, match="a running experiment must not have"):
        ExperimentRecord(status="running", summary=summary([]), finished_at=datetime.now(UTC), **fields)
    with pytest.raises(ValidationError, match="status"):
        ExperimentRecord(status="done", **fields)
    assert ExperimentRecord(status="running", **fields).summary is None


def test_run_usage_counts_task_judge_and_space_calls_of_finished_and_killed_evals(store: Store) -> None:
    """What a resumed run's budget starts from: every call the run paid, not only task calls. A killed eval's
    rows count one call per task call that reached the model (not a cache hit, not a failed call) plus the
    judge calls each row paid, a cached task call's judge included."""
    run = store.begin_run(key="run-key", name="qa", spec={}, settings={}, dataset_hash="da7a")
    finished, _ = begin(store, "done", run_id=run.id, trial_number=0)
    paid = [
        row("a", task_cost_usd=0.01, scorer_calls=2, scorer_cost_usd=0.002),
        row("b", cache_hit=True, scorer_calls=1, scorer_cost_usd=0.001),
    ]
    store.add_rows(finished, paid)
    store.finish_experiment(finished, EvalSummary.from_rows(paid, ["em"], model_calls=1, wall_s=1.0))
    killed, _ = begin(store, "killed", run_id=run.id, trial_number=1)
    store.add_rows(
        killed,
        [
            row("a", output="yes", task_cost_usd=0.01, scorer_calls=1, scorer_cost_usd=0.001),
            row("b", output="yes", cache_hit=True, scorer_calls=1, scorer_cost_usd=0.001),
            row("c", output=None, error="model call failed: 500"),
        ],
    )
    # finished: 1 task + 3 judge calls; killed: a's task and judge, b's judge only, c nothing
    assert store.run_usage(run.id) == ((1 + 3) + (2 + 1 + 0), pytest.approx(0.013 + 0.012))

    store.save_run_space(run.id, {"dimensions": []}, calls=4, usd=0.5)
    store.save_run_space(run.id, {"dimensions": ["rebased"]})  # a later save of the space keeps the count
    assert store.run_usage(run.id) == (7 + 4, pytest.approx(0.525))
    assert store.get_run(run.id).space == {"dimensions": ["rebased"]}
