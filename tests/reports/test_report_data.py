"""The report's numbers against the run's own records: leaderboard, intervals, costs, Pareto front, cases."""

import asyncio

import optuna
import pytest

from promptopt.compare import compare
from promptopt.engine import ExperimentRole, Services
from promptopt.errors import NotFound
from promptopt.reports import RunReport, build_run_report, render_html, render_markdown
from promptopt.search import optuna_storage_url
from tests.reports.helpers import LATENCY, PRICES, make_run, scored_rows


def test_leaderboard_order_and_scores_are_the_run_results(finished):
    result, _, report = finished
    assert [r.trial for r in report.leaderboard] == [c.trial for c in result.leaderboard]
    assert [r.rank for r in report.leaderboard] == list(range(1, len(result.leaderboard) + 1))
    for row, cand in zip(report.leaderboard, result.leaderboard, strict=True):
        assert row.validation.mean == cand.validation_score
        assert (row.test.mean if row.test else None) == cand.test_score
        assert (row.cost_usd, row.model_calls, row.mean_latency_s) == (
            cand.cost_usd,
            cand.model_calls,
            cand.mean_latency_s,
        )
        assert (row.cost_per_row_usd, row.latency_per_row_s) == (cand.cost_per_row_usd, cand.latency_per_row_s)
        assert (row.cost_per_row_usd, row.latency_per_row_s) == pytest.approx((PRICES[row.model], LATENCY[row.model]))
        assert row.model == cand.config["model"] and row.description == cand.description
    assert report.winner_trial == result.best.trial and report.baseline_trial == result.baseline.trial
    assert (report.lift, report.lift_ci95, report.p_value) == (result.lift, result.lift_ci95, result.p_value)
    assert report.winner_config == result.best.config and report.baseline_config == result.baseline.config
    assert (report.model_calls, report.cost_usd, report.trial_count) == (
        result.model_calls,
        result.cost_usd,
        result.trials,
    )


def test_intervals_are_bootstrapped_over_the_trials_rows(finished):
    result, store, report = finished
    for row in report.leaderboard:
        rows = scored_rows(store, row.experiment_id)
        assert row.validation.cases == len(rows)
        assert sum(r.objective for r in rows) / len(rows) == pytest.approx(row.validation.mean)
        lo, hi = row.validation.ci95
        assert 0 <= lo <= row.validation.mean <= hi <= 1
        if 0 < row.validation.mean < 1:
            assert lo < hi, "a mixed set of 0/1 rows has a non-degenerate interval"
    tested = [r for r in report.leaderboard if r.test]
    assert {r.trial for r in tested} >= {result.baseline.trial, result.best.trial}
    for row in tested:
        assert row.test.cases == len(scored_rows(store, row.test_experiment_id))


def test_every_trial_is_there_and_costs_add_up_to_the_run(finished):
    result, store, report = finished
    study = optuna.load_study(study_name=f"run-{result.run_id}", storage=optuna_storage_url(str(store.url)))
    assert [t.number for t in report.trials] == [t.number for t in study.trials]
    assert {t.number for t in report.trials if t.state == "duplicate"} == {
        t.number for t in study.trials if "duplicate_of" in t.user_attrs
    }
    assert all(t.cost_usd == 0 and t.model_calls == 0 for t in report.trials if t.state == "duplicate")
    # the search's spend (progress) plus the held-out verdict's is the run's whole spend
    verdict = [
        e.summary
        for e in store.list_experiments(run_id=result.run_id, limit=1000)
        if e.role in (ExperimentRole.VERDICT, ExperimentRole.INCUMBENT)
    ]
    last = report.progress[-1]
    assert last.cumulative_calls + sum(s.model_calls for s in verdict) == result.model_calls
    assert last.cumulative_usd + sum(s.cost_usd for s in verdict) == pytest.approx(result.cost_usd)
    bests = [p.best for p in report.progress]
    assert bests == sorted(bests) and bests[-1] == result.best.validation_score
    assert [p.cumulative_usd for p in report.progress] == sorted(p.cumulative_usd for p in report.progress)


def test_pareto_front_is_exactly_the_undominated_configurations(finished):
    """A single-objective run's front: validation score against what a configuration's call costs per row."""
    _, _, report = finished
    rows = report.leaderboard
    assert report.front_objective == "cost"

    def dominated(r):
        return any(
            o.validation.mean >= r.validation.mean
            and o.cost_per_row_usd <= r.cost_per_row_usd
            and (o.validation.mean > r.validation.mean or o.cost_per_row_usd < r.cost_per_row_usd)
            for o in rows
        )

    assert {r.trial for r in rows if r.pareto} == {r.trial for r in rows if not dominated(r)}
    assert any(r.pareto for r in rows) and not all(r.pareto for r in rows)


def test_models_spread_and_importance(finished):
    _, _, report = finished
    assert {m.model for m in report.models} == {"fake/m", "fake/big"}
    assert sum(m.trials for m in report.models) == len(report.leaderboard)
    for m in report.models:
        scores = sorted(r.validation.mean for r in report.leaderboard if r.model == m.model)
        assert sorted(m.scores) == scores and (m.worst, m.best) == (scores[0], scores[-1])
    assert report.importance.note is None
    assert set(report.importance.values) <= set(report.distributions)
    assert sum(report.importance.values.values()) == pytest.approx(1.0)


def test_case_diff_is_the_comparison_of_the_verdicts_test_evals(finished):
    result, store, report = finished
    base, win = (store.get_result(c.test_experiment_id) for c in (result.baseline, result.best))
    cmp = compare(base, win)
    diff = report.case_diff
    assert {c.case_id for c in diff.cases if c.kind == "improved"} == {c.case_id for c in cmp.improved}
    assert {c.case_id for c in diff.cases if c.kind == "regressed"} == {c.case_id for c in cmp.regressed}
    assert diff.regressed > 0 and diff.improved > 0, "the scripted winner both improves and regresses"
    assert diff.paired_cases == cmp.paired_cases and diff.delta == pytest.approx(result.lift)
    regressed = next(c for c in diff.cases if c.kind == "regressed")
    row = next(r for r in win.rows if r.case_id == regressed.case_id)
    assert (regressed.winner_output, regressed.input, regressed.expected) == (row.output, row.input, row.expected)
    assert [c.kind for c in diff.cases] == sorted(
        (c.kind for c in diff.cases), key=["regressed", "improved", "unchanged"].index
    )


def test_json_round_trips(finished):
    _, _, report = finished
    assert RunReport.model_validate_json(report.model_dump_json()) == report


def test_a_run_with_one_trial_has_no_importance_and_no_change(tmp_path):
    result, store = make_run(tmp_path, trials=1)
    report = build_run_report(store, result.run_id[:8])
    assert report.run_id == result.run_id
    assert len(report.leaderboard) == 1 and report.winner_trial == report.baseline_trial == 0
    assert "at least 2" in report.importance.note and report.importance.values == {}
    assert report.case_diff.improved == report.case_diff.regressed == 0


def test_an_interrupted_run_reports_its_completed_trials(tmp_path):
    class Killed(Exception):
        pass

    def die_after_three(event):
        if isinstance(event, TrialFinished) and event.number >= 3:
            raise Killed

    from promptopt.cache import DiskResponseCache
    from promptopt.search import RunOptions, SearchRun, TrialFinished
    from promptopt.spec import load_spec
    from promptopt.store import get_store
    from promptopt.validate import load_and_check
    from tests.reports.helpers import PricedBackend, respond, write_spec

    loaded = load_spec(write_spec(tmp_path))
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    services = Services(backend=PricedBackend(respond), cache=DiskResponseCache(tmp_path / "c"), records=store)
    run = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        on_event=die_after_three,
        services=services,
        options=RunOptions(seed=0, parallel=1, max_trials=10),
    )
    with pytest.raises(Killed):
        asyncio.run(run.run())
    record = store.list_runs()[0]
    assert record.status == "running"
    report = build_run_report(store, record.id)
    assert report.lift is None and report.case_diff is None and report.stopped_by is None
    assert report.baseline_trial == 0 and report.leaderboard[0].winner
    scores = [r.validation.mean for r in report.leaderboard]
    assert scores == sorted(scores, reverse=True) and len(report.leaderboard) >= 3
    assert report.model_calls == store.run_usage(record.id)[0] > 0
    assert "No held-out verdict" in render_markdown(report) and "the run did not finish" in render_html(report)


def test_an_unknown_run_is_not_found(finished):
    _, store, _ = finished
    with pytest.raises(NotFound):
        build_run_report(store, "0123456789abcdef")
