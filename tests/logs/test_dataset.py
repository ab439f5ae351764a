"""Datasets from logs: queries, the eval row format, content hashes, immutability, and the `logs` commands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from promptopt.data import read_records
from promptopt.errors import InputError
from promptopt.logs import LogQuery, dataset_from_logs, dataset_hash, export_dataset
from promptopt.spec import load_spec
from promptopt.store import Store
from promptopt.validate import load_and_check
from tests.logs.helpers import T0, cli_app, seed_logs

runner = CliRunner()


def ids(records: list[dict]) -> list[str]:
    return [r["metadata"]["log_id"] for r in records]


def test_queries_select_by_prompt_version_label_time_and_feedback(store: Store) -> None:
    seed_logs(store)
    assert ids(dataset_from_logs(store, LogQuery(prompt="reviews"))) == [f"log-{i}" for i in range(10)]
    assert ids(dataset_from_logs(store, LogQuery(prompt="reviews", version=2))) == [f"log-{i}" for i in range(6, 10)]
    assert ids(dataset_from_logs(store, LogQuery(prompt="reviews", label="canary"))) == ["log-3", "log-7"]
    window = LogQuery(prompt="reviews", since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5))
    assert ids(dataset_from_logs(store, window)) == ["log-2", "log-3", "log-4"]  # since inclusive, until not
    assert ids(dataset_from_logs(store, LogQuery(prompt="reviews", with_feedback=True))) == [
        "log-0",
        "log-2",
        "log-4",
        "log-6",
        "log-8",
    ]
    newest = LogQuery(prompt="reviews", newest_first=True, limit=2)
    assert ids(dataset_from_logs(store, newest)) == ["log-9", "log-8"]
    assert len(dataset_from_logs(store, LogQuery())) == 12


def test_a_log_becomes_an_eval_row_whose_expected_comes_from_its_latest_feedback(store: Store) -> None:
    seed_logs(store)
    rows = {r["metadata"]["log_id"]: r for r in dataset_from_logs(store, LogQuery())}
    assert rows["log-2"] == {
        "input": {"text": "review 2"},
        "expected": "negative",
        "metadata": {
            "log_id": "log-2",
            "prompt": "reviews",
            "version": 1,
            "label": "production",
            "model": "fake/m",
            "created_at": (T0 + timedelta(hours=2)).isoformat(),
            "output": "positive",
            "feedback_score": 0.0,
            "app": {"i": 2},
        },
    }
    assert rows["log-4"]["expected"] == "neutral"  # the later feedback (a corrected output) wins
    assert rows["log-1"]["expected"] is None
    assert rows["other-0"]["input"] == {"input": "plain text"}  # a non-object input keeps its value under "input"
    assert len(dataset_from_logs(store, LogQuery(), require_expected=True)) == 5


def test_an_export_is_content_hashed_immutable_and_usable_as_a_spec_s_data(store: Store, tmp_path: Path) -> None:
    seed_logs(store)
    query = LogQuery(prompt="reviews", with_feedback=True)
    out = tmp_path / "fresh.jsonl"
    result = export_dataset(store, query, out, require_expected=True)
    assert result.records == 5 == result.with_expected
    assert result.hash == dataset_hash(dataset_from_logs(store, query, require_expected=True))
    assert export_dataset(store, query, out, require_expected=True) == result  # the same content: left as is
    assert [r["expected"] for r in read_records(out)] == ["positive", "negative", "neutral", "negative", "positive"]
    with pytest.raises(InputError, match="exists with other content"):
        export_dataset(store, LogQuery(prompt="reviews"), out)
    assert read_records(out)[2]["metadata"]["log_id"] == "log-4"
    with pytest.raises(InputError, match="no log matches"):
        export_dataset(store, LogQuery(prompt="nobody"), tmp_path / "none.jsonl")

    spec = {
        "task": {"name": "reviews", "model": "fake/m", "prompt": [{"role": "user", "content": "{{text}}"}]},
        "dataset": {"file": out.name, "split": {"train": 0.2, "validation": 0.4, "test": 0.4}},
        "scorers": [{"type": "exact_match"}],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    dataset = load_and_check(load_spec(tmp_path / "spec.yaml"))
    assert len(dataset.train) + len(dataset.validation) + len(dataset.test) == 5


def test_the_logs_commands(store: Store, tmp_path: Path) -> None:
    seed_logs(store)
    app, url = cli_app(), str(store.url)
    listed = runner.invoke(
        app, ["logs", "list", "--prompt", "reviews", "--with-feedback", "--limit", "3", "--store", url, "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [e["id"] for e in json.loads(listed.output)] == ["log-4", "log-6", "log-8"]
    table = runner.invoke(app, ["logs", "list", "--since", "2026-03-01T20:00Z", "--store", url])
    assert table.exit_code == 0 and "log-8" in table.output and "log-7" not in table.output

    out = tmp_path / "fresh.jsonl"
    exported = runner.invoke(
        app,
        [
            "logs",
            "export",
            "--prompt",
            "reviews",
            "--version",
            "1",
            "--with-feedback",
            "--out",
            str(out),
            "--store",
            url,
        ],
    )
    assert exported.exit_code == 0, exported.output
    digest = dataset_hash(read_records(out))
    assert f"dataset {digest}" in exported.output and "3 record(s), 3 with an expected value" in exported.output
    again = runner.invoke(app, ["logs", "export", "--prompt", "reviews", "--out", str(out), "--store", url])
    assert again.exit_code == 2 and "exists with other content" in again.output

    stats = runner.invoke(app, ["logs", "stats", "reviews", "--store", url, "--json"])
    assert stats.exit_code == 0, stats.output
    by_version = {s["version"]: s for s in json.loads(stats.output)}
    assert by_version[1]["logs"] == 6 and by_version[1]["feedback_logs"] == 3 and by_version[1]["feedback_rate"] == 0.5
    assert by_version[2]["logs"] == 4 and by_version[2]["feedback_logs"] == 2

    for bad, field in ((["--since", "last tuesday"], "since"), (["--prompt", "bad name!"], "prompt")):
        result = runner.invoke(app, ["logs", "list", *bad, "--store", url])
        assert result.exit_code == 2 and field in result.output, result.output
    assert runner.invoke(app, ["logs", "stats", "nobody", "--store", url]).exit_code == 1
