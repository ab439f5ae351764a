"""A prompt's leaderboard: every registered version and every run, by model, with calls, tokens and cost."""

import json

import pytest
import typer
from typer.testing import CliRunner

from promptopt.cli import _report
from promptopt.config import PromptConfig
from promptopt.engine import ExperimentRole
from promptopt.registry import Lineage, Registry
from promptopt.reports import PromptLeaderboard, build_prompt_leaderboard, render_leaderboard_html
from tests.reports.helpers import make_run


@pytest.fixture(scope="module")
def prompt(tmp_path_factory):
    """Two runs of one prompt (different seeds) and three versions: the winners of both runs and a hand-written
    one on another model, with production on the first winner."""
    tmp = tmp_path_factory.mktemp("prompt")
    first, store = make_run(tmp, trials=6, seed=0)
    second, _ = make_run(tmp, trials=4, seed=1, store=store)
    registry = Registry(store)
    versions = []
    for run in (first, second):
        lineage = Lineage(
            run_id=run.run_id,
            trial=run.best.trial,
            validation_score=run.best.validation_score,
            test_score=run.best.test_score,
        )
        versions.append(
            registry.register(
                "html-reviews", PromptConfig.model_validate(run.best.config), lineage=lineage, created_by="ci"
            )[0]
        )
    manual = PromptConfig.model_validate(first.baseline.config).model_copy(update={"model": "fake/other"})
    versions.append(registry.register("html-reviews", manual, created_by="alice")[0])
    registry.set_label("html-reviews", "production", versions[0].version, who="alice")
    return store, (first, second), versions


def test_every_version_and_every_run_oldest_first(prompt):
    store, runs, versions = prompt
    board = build_prompt_leaderboard(store, "html-reviews")
    assert [e.created_at for e in board.entries] == sorted(e.created_at for e in board.entries)
    assert {e.ref for e in board.entries if e.kind == "run"} == {r.run_id for r in runs}
    assert {e.ref for e in board.entries if e.kind == "version"} == {f"v{v.version}" for v in versions}
    assert board.labels == {"production": versions[0].version}
    assert next(e for e in board.entries if e.ref == f"v{versions[0].version}").labels == ("production",)
    for run in runs:
        entry = next(e for e in board.entries if e.ref == run.run_id)
        assert (entry.test_score, entry.validation_score, entry.model_calls, entry.cost_usd) == (
            run.best.test_score,
            run.best.validation_score,
            run.model_calls,
            run.cost_usd,
        )
        summaries = [e.summary for e in store.list_experiments(run_id=run.run_id, limit=1000) if e.summary]
        assert entry.tokens == sum(s.task_tokens + s.scorer_tokens for s in summaries) > 0


def test_versions_carry_the_calls_tokens_and_cost_of_their_trial(prompt):
    store, (first, _), versions = prompt
    board = build_prompt_leaderboard(store, "html-reviews")
    entry = next(e for e in board.entries if e.ref == f"v{versions[0].version}")
    trial = first.best.trial
    evals = [
        e.summary
        for e in store.list_experiments(run_id=first.run_id, limit=1000)
        if e.trial_number == trial and e.role in (ExperimentRole.TRIAL, ExperimentRole.VERDICT)
    ]
    assert len(evals) == 2  # validation and test
    assert entry.model_calls == sum(s.model_calls for s in evals)
    assert entry.cost_usd == pytest.approx(sum(s.cost_usd for s in evals))
    manual = next(e for e in board.entries if e.ref == f"v{versions[2].version}")
    assert manual.model == "fake/other" and manual.tokens is None and manual.test_score is None


def test_grouped_by_model_and_drawn_over_time(prompt):
    store, _, _ = prompt
    board = build_prompt_leaderboard(store, "html-reviews")
    groups = board.by_model()
    assert list(groups) == sorted(groups) and "fake/other" in groups
    assert sum(len(v) for v in groups.values()) == len(board.entries)
    page = render_leaderboard_html(board)
    assert 'id="fig-over_time"' in page and page.count('<table class="prompt-leaderboard"') == len(groups)
    assert PromptLeaderboard.model_validate_json(board.model_dump_json()) == board


def test_cli_leaderboard_table_json_and_html(prompt, tmp_path):
    store, runs, _ = prompt
    app = typer.Typer()
    _report.register(app)
    url = str(store.url)
    table = CliRunner().invoke(app, ["leaderboard", "html-reviews", "--store", url])
    assert table.exit_code == 0, table.output
    assert runs[0].run_id[:8] in table.output and "fake/other" in table.output and "production" in table.output
    out = tmp_path / "board.html"
    as_json = CliRunner().invoke(app, ["leaderboard", "html-reviews", "--json", "--html", str(out), "--store", url])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert len(data["entries"]) == 5 and out.read_text().startswith("<!DOCTYPE html>")
    missing = CliRunner().invoke(app, ["leaderboard", "no-such-prompt", "--store", url])
    assert missing.exit_code == 1 and "no run and no registered version" in missing.output
