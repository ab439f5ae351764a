"""The CI gate on real test-split evals of a run: the baseline and the winner (which improves on some cases and
regresses on others)."""

import pytest

from promptopt.reports import gate
from promptopt.reports._markdown import cell, plain


@pytest.fixture(scope="module")
def evals(finished):
    result, store, _ = finished
    return store.get_result(result.baseline.test_experiment_id), store.get_result(result.best.test_experiment_id)


def test_an_improvement_passes_and_still_lists_its_regressions(evals):
    baseline, winner = evals
    result = gate(winner, baseline, threshold=0.0)
    assert result.passed and result.delta > 0
    assert result.delta == pytest.approx(result.comparison.objective_delta)
    assert "passed" in result.markdown
    regressed = result.comparison.regressed
    assert regressed, "the scripted winner regresses on some cases"
    assert f"Regressed cases ({len(regressed)}" in result.markdown
    for change in regressed:  # every regressed case is listed, with both outputs
        assert (
            f"| {cell(plain(change.input))} | {cell(change.expected)} | {cell(change.output_a)} | "
            f"{cell(change.output_b)} |" in result.markdown
        )


def test_a_regression_beyond_the_threshold_fails(evals):
    baseline, winner = evals
    result = gate(baseline, winner, threshold=0.0)  # the baseline as candidate against the winner in production
    assert not result.passed and result.delta < 0
    assert result.candidate_mean == pytest.approx(baseline.summary.objective)
    assert result.incumbent_mean == pytest.approx(winner.summary.objective)
    assert "failed" in result.markdown and "below the incumbent" in result.reason
    assert f"**{len(result.comparison.regressed)} regressed**" in result.markdown


def test_the_threshold_is_the_largest_drop_allowed(evals):
    baseline, winner = evals
    drop = -gate(baseline, winner, threshold=0.0).delta
    assert gate(baseline, winner, threshold=drop).passed  # exactly the allowed drop passes
    assert not gate(baseline, winner, threshold=drop - 1e-3).passed
    assert gate(baseline, winner, threshold=1.0).passed
    assert not gate(winner, baseline, threshold=-1.0).passed  # a negative threshold demands a gain
    with pytest.raises(ValueError, match="finite"):
        gate(winner, baseline, threshold=float("nan"))


def test_a_failed_eval_or_no_shared_case_is_no_evidence(evals):
    baseline, winner = evals
    failed = gate(winner.model_copy(update={"status": "failed"}), baseline, threshold=1.0)
    assert not failed.passed and "candidate eval failed" in failed.reason
    disjoint = baseline.model_copy(
        update={"rows": tuple(r.model_copy(update={"case_id": "other-" + r.case_id}) for r in baseline.rows)}
    )
    result = gate(winner, disjoint, threshold=1.0)
    assert not result.passed and "share no scored case" in result.reason and result.delta is None


def test_the_gate_markdown_escapes_outputs(evals):
    baseline, winner = evals
    md = gate(baseline, winner, threshold=0.0).markdown
    assert "<b>" not in md and "<script>" not in md and "&lt;b&gt;" in md
