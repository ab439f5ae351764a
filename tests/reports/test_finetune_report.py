"""Fine-tuned candidates in the run report: each job with what it was made from and what its training cost
this run, its leaderboard rows marked, in the HTML and Markdown renderings; and a candidate that gives one
answer to nearly every row flagged. The run is real (search, store,
report) on a scripted backend; only the LoRA training is replaced, by a trainer that reports a training
time without training (tests/search/finetune_fakes.py), so the test needs no torch."""

from __future__ import annotations

import asyncio

import pytest

from promptopt.engine import Services
from promptopt.models import LOCAL_DEFAULT_MODEL, ScriptedBackend
from promptopt.reports import (
    build_prompt_leaderboard,
    build_run_report,
    render_html,
    render_leaderboard_html,
    render_markdown,
)
from promptopt.search import RunOptions, SearchRun
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.validate import load_and_check
from tests.search.finetune_fakes import TRAIN_S, answer, fake_trainer, write_spec


@pytest.fixture
def promoted(tmp_path, monkeypatch):
    """A finished run whose fine-tuned winner was promoted, and its store."""
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(tmp_path / "adapters"))
    loaded = load_spec(write_spec(tmp_path))
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    run = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(sampler="grid", seed=0, max_trials=4, top_k=1),
        services=Services(backend=ScriptedBackend(answer), records=store),
        trainer=fake_trainer(),
    )
    return asyncio.run(run.run()), store


@pytest.fixture
def report(promoted):
    result, store = promoted
    return build_run_report(store, result.run_id)


def test_the_report_lists_the_job_with_its_lineage_and_training_cost_and_marks_its_rows(report):
    (job,) = report.fine_tunes
    assert (job.name, job.base_model, job.data, job.epochs, job.rank) == ("lora", LOCAL_DEFAULT_MODEL, "train", 2, 4)
    assert job.model.startswith(f"{LOCAL_DEFAULT_MODEL}+ft-") and job.train_s == TRAIN_S and not job.reused
    assert job.rows == 12 and job.trials == 1 and job.best == 1.0  # 12 train cases; right on every one
    winner = report.leaderboard[0]
    assert winner.model == job.model and report.fine_tune_of(winner.model) == job
    assert report.fine_tune_of(report.row(report.baseline_trial).model) is None


def test_html_and_markdown_show_the_job_and_the_training_time(report):
    markdown = render_markdown(report)
    assert "### Fine-tuned candidates: 1" in markdown
    assert "(fine-tune lora: 123 s training)" in markdown  # the winner's leaderboard row
    assert f"| lora | `{report.fine_tunes[0].model}` | `{LOCAL_DEFAULT_MODEL}` | train | 12 | 2 | 4 |" in markdown
    html = render_html(report)
    assert 'id="fine-tune-jobs"' in html and 'data-job="lora"' in html and "123 s training" in html
    assert "fine-tune lora</span>" in html


def test_the_prompt_leaderboard_shows_the_training_time_of_the_fine_tuned_version_and_of_the_run(promoted):
    result, store = promoted
    assert result.promotion is not None and result.promotion.promoted
    board = build_prompt_leaderboard(store, "reviews")
    (version,) = [e for e in board.entries if e.kind == "version"]
    (run,) = [e for e in board.entries if e.kind == "run"]
    assert "+ft-" in (version.model or "") and version.training_s == TRAIN_S and run.training_s == TRAIN_S
    html = render_leaderboard_html(board)
    assert '<th class="num">training s</th>' in html and ">123</td>" in html


def test_a_run_without_fine_tunes_has_no_such_section(tmp_path):
    from tests.reports.helpers import make_run

    result, store = make_run(tmp_path, trials=4)
    report = build_run_report(store, result.run_id)
    assert report.fine_tunes == ()
    assert all(e.training_s is None for e in build_prompt_leaderboard(store, "html-reviews").entries)
    assert "Fine-tuned candidates" not in render_markdown(report) and 'id="fine-tune-jobs"' not in render_html(report)


def test_a_candidate_that_gives_one_answer_to_every_row_is_flagged(promoted):
    result, store = promoted
    report = build_run_report(store, result.run_id)
    base = report.row(report.baseline_trial)  # the base model: wrong on every case, so both labels
    assert base.top_answer_share == 5 / 9 and not base.one_answer  # 9 validation rows: 5 of one label, 4 of the other
    assert not base.model_copy(update={"top_answer_share": 1.0}).one_answer  # 9 rows are too few to say so
    flagged = base.model_copy(
        update={"top_answer_share": 1.0, "validation": base.validation.model_copy(update={"cases": 30})}
    )
    rows = tuple(flagged if r.trial == base.trial else r for r in report.leaderboard)
    shown = report.model_copy(update={"leaderboard": rows})
    assert flagged.one_answer and "(one answer on 100% of validation rows)" in render_markdown(shown)
    assert ">one answer 100%</span>" in render_html(shown) and "one answer 100%" not in render_html(report)
