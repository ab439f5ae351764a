"""Fine-tuned candidates in the run report: each job with what it was made from and what its training cost
this run, its leaderboard rows marked, in the HTML and Markdown renderings. The run is real (search, store,
report) on a scripted backend; only the LoRA training is replaced, by a trainer that writes a small file and
reports a training time, so the test needs no torch."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
import yaml

from promptopt.engine import Services
from promptopt.finetune import Adapter, LoraParams
from promptopt.models import LOCAL_DEFAULT_MODEL, ScriptedBackend
from promptopt.reports import build_run_report, render_html, render_markdown
from promptopt.search import RunOptions, SearchRun
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.validate import load_and_check

TRAIN_S = 123.4


def answer(request) -> str:  # the fine-tune is right on every case, the base model on none
    right = "positive" if int(request.messages[-1]["content"].split()[-1]) % 2 else "negative"
    wrong = "negative" if right == "positive" else "positive"
    return right if "+ft-" in request.model else wrong


def fake_train(base_model: str, examples, params: LoraParams, **_: object) -> Adapter:
    key = hashlib.sha256(json.dumps([e.model_dump(mode="json") for e in examples]).encode()).hexdigest()[:16]
    return Adapter(
        model=f"{base_model}+ft-{key}",
        base_model=base_model,
        key=key,
        path=f"/nowhere/{key}.gguf",
        file_sha256="0" * 64,
        data_hash="1" * 64,
        params=params,
        rows=len(examples),
        train_s=TRAIN_S,
    )


@pytest.fixture
def report(tmp_path, monkeypatch):
    monkeypatch.setattr("promptopt.finetune.train_lora", fake_train)
    rows = [{"input": {"text": f"review {i}"}, "expected": "positive" if i % 2 else "negative"} for i in range(30)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "reviews",
            "model": LOCAL_DEFAULT_MODEL,
            "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
            "output": {"type": "label", "labels": ["positive", "negative"]},
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 1},
        "scorers": [{"type": "exact_match"}],
        "search": {"fine_tune": {"jobs": [{"name": "lora", "epochs": 2, "rank": 4}]}},
        "budget": {"trials": 4},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    loaded = load_spec(tmp_path / "spec.yaml")
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    run = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(sampler="grid", seed=0, max_trials=4, top_k=1, promote=False),
        services=Services(backend=ScriptedBackend(answer), records=store),
    )
    result = asyncio.run(run.run())
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


def test_a_run_without_fine_tunes_has_no_such_section(tmp_path):
    from tests.reports.helpers import make_run

    result, store = make_run(tmp_path, trials=4)
    report = build_run_report(store, result.run_id)
    assert report.fine_tunes == ()
    assert "Fine-tuned candidates" not in render_markdown(report) and 'id="fine-tune-jobs"' not in render_html(report)
