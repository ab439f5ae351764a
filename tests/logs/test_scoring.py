"""Online scores: reference-free scorers on a seeded sample of new logs, recorded once, failures as errors;
the per-version numbers of `optimize logs stats`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter
from typer.testing import CliRunner

from promptopt.config import PromptConfig
from promptopt.errors import InputError, ScorerError
from promptopt.logs import LogIn, LogStore, in_sample, score_logs
from promptopt.registry import Registry
from promptopt.scorers import ScoreInput, Scorer, ScoreResult, build_scorers
from promptopt.spec import Message, OutputSpec, ScorerSpec
from promptopt.store import Store
from tests.logs.helpers import cli_app, seed_logs


def regex(pattern: str = "^positive$") -> list[Scorer]:
    spec = TypeAdapter(ScorerSpec).validate_python({"type": "regex", "pattern": pattern})
    return build_scorers([spec], base_dir=Path("."), backend=None)


class Picky(Scorer):
    """Scores the parsed value; fails on log 5 (recorded as an error, not a score)."""

    name, weight, needs_expected = "picky", 1.0, False

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    async def score(self, row: ScoreInput) -> ScoreResult:
        self.seen[row.input["text"]] = row.parsed
        if row.input["text"] == "review 5":
            raise ScorerError("cannot score this one")
        return ScoreResult(value=1.0 if row.parsed == "positive" else 0.0)


def test_a_seeded_sample_of_new_logs_is_scored_once(store: Store) -> None:
    seed_logs(store)
    first = score_logs(store, "reviews", scorers=regex(), sample_rate=0.5, seed=7)
    sampled = {f"log-{i}" for i in range(10) if in_sample(f"log-{i}", rate=0.5, seed=7)}
    assert first.considered == 10 and first.sampled == len(sampled) == first.recorded and 0 < len(sampled) < 10
    assert score_logs(store, "reviews", scorers=regex(), sample_rate=0.5, seed=7).recorded == 0  # nothing new
    wider = score_logs(store, "reviews", scorers=regex(), sample_rate=1.0, seed=7)
    assert wider.considered == 10 - len(sampled) and wider.recorded == 10 - len(sampled)
    stats = {s.version: s for s in LogStore(store).stats("reviews")}
    positive = {1: [1, 2, 4, 5], 2: [7, 8]}  # output "positive" when i % 3 != 0
    assert stats[1].online_score == pytest.approx(len(positive[1]) / 6) and stats[1].scored_logs == 6
    assert stats[2].online_score == pytest.approx(len(positive[2]) / 4)
    assert stats[1].online_by_scorer == {"regex": pytest.approx(4 / 6)}


def test_outputs_are_parsed_as_the_version_says_and_failures_are_errors(store: Store) -> None:
    seed_logs(store)
    registry = Registry(store)
    label = PromptConfig(
        messages=(Message(role="user", content="{{text}}"),),
        model="fake/m",
        output=OutputSpec(type="label", labels=("positive", "negative")),
    )
    registry.register("reviews", label, created_by="test")
    LogStore(store).add_logs(
        [
            LogIn(
                id="log-x", prompt="reviews", version=1, input={"text": "review x"}, output="I think it is Positive."
            ),
            LogIn(
                id="log-y", prompt="reviews", version=2, input={"text": "review y"}, output=" I think it is Positive. "
            ),
        ]
    )
    picky = Picky()
    report = score_logs(store, "reviews", scorers=[picky], sample_rate=1.0)
    assert report.recorded == 12 and report.errors == 1
    assert picky.seen["review x"] == "positive"  # v1 has a label output: parsed as a label
    assert picky.seen["review y"] == "I think it is Positive."  # v2 is not in the registry: the text, stripped
    stats = {s.version: s for s in LogStore(store).stats("reviews")}
    assert stats[1].scorer_errors == 1 and stats[1].online_score == pytest.approx(4 / 6)  # the error is no score


def test_scorers_that_need_a_reference_are_refused(store: Store) -> None:
    spec = TypeAdapter(ScorerSpec).validate_python({"type": "exact_match"})
    with pytest.raises(InputError, match="compare with an expected value"):
        score_logs(store, "reviews", scorers=build_scorers([spec], base_dir=Path("."), backend=None), sample_rate=1)
    with pytest.raises(InputError, match="sample_rate"):
        score_logs(store, "reviews", scorers=regex(), sample_rate=0)


def test_the_score_command(store: Store, tmp_path: Path) -> None:
    seed_logs(store)
    spec = {
        "task": {"name": "reviews", "prompt": [{"role": "user", "content": "{{text}}"}]},
        "dataset": {"file": "x.jsonl"},
        "scorers": [{"type": "exact_match"}, {"type": "regex", "pattern": "neg"}],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(
        cli_app(),
        [
            "logs",
            "score",
            "reviews",
            "--spec",
            str(tmp_path / "spec.yaml"),
            "--sample-rate",
            "1",
            "--store",
            str(store.url),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["recorded"] == 10 and report["means"] == {"regex": pytest.approx(4 / 10)}
    [v2, v1] = LogStore(store).stats("reviews")
    assert v1.online_by_scorer == {"regex": pytest.approx(2 / 6)} and v2.online_by_scorer == {"regex": 0.5}
