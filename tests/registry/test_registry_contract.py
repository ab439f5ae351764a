"""Contract of :class:`promptopt.registry.Registry`, on SQLite and PostgreSQL (see conftest.store_url)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from promptopt.errors import InputError, NotFound
from promptopt.registry import LABEL_PATTERN, NAME_PATTERN, LabelEvent, Lineage, PromptVersion, Registry
from promptopt.spec import Decoding
from tests.registry.helpers import config, rich_config

LINEAGE = Lineage(
    run_id="r" * 32, trial=4, spec_hash="s" * 64, dataset_hash="d" * 64, validation_score=0.71, test_score=0.69
)


def test_versions_count_from_one_per_name_and_hold_the_whole_config(registry: Registry) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    first, created = registry.register("triage", rich_config(), lineage=LINEAGE, created_by="alice")
    assert created and first.version == 1
    assert first.config == rich_config() and first.config_hash == rich_config().hash
    assert first.lineage == LINEAGE and first.created_by == "alice" and first.created_at >= before
    assert registry.get("triage", version=1) == first  # the round trip through the database changes nothing
    second, _ = registry.register("triage", config("v2"), created_by="bob")
    other, _ = registry.register("other-prompt", config("v2"), created_by="bob")
    assert (second.version, other.version) == (2, 1)
    assert [v.version for v in registry.versions("triage")] == [1, 2]
    assert registry.get("triage") == second  # no version and no label: the newest


def test_registering_the_same_content_again_returns_the_existing_version(registry: Registry) -> None:
    first, _ = registry.register("triage", config("a"), lineage=LINEAGE, created_by="alice")
    registry.register("triage", config("b"), created_by="alice")
    again, created = registry.register("triage", config("a"), lineage=Lineage(test_score=0.1), created_by="eve")
    assert not created and again == first  # original lineage and author kept
    assert [v.version for v in registry.versions("triage")] == [1, 2]


def test_versions_are_immutable_values(registry: Registry) -> None:
    version, _ = registry.register("triage", config(), created_by="alice")
    with pytest.raises(ValidationError):
        version.version = 5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="finite"):
        Lineage(test_score=float("nan"))
    with pytest.raises(ValidationError):
        PromptVersion.model_validate({**version.model_dump(), "version": 0})


def test_label_moves_are_audited_with_who_when_why_and_from_to(registry: Registry) -> None:
    for text in ("a", "b", "c"):
        registry.register("triage", config(text), created_by="alice")
    first = registry.set_label("triage", "production", 1, who="alice", why="first release")
    second = registry.set_label("triage", "production", 3, who="bob", why="wins on test")
    registry.set_label("triage", "staging", 2, who="carol")
    assert registry.get("triage", label="production").version == 3
    assert registry.labels("triage") == {"production": 3, "staging": 2}
    history = registry.history("triage")
    assert [(e.label, e.kind, e.from_version, e.to_version, e.who, e.why) for e in history] == [
        ("production", "set", None, 1, "alice", "first release"),
        ("production", "set", 1, 3, "bob", "wins on test"),
        ("staging", "set", None, 2, "carol", None),
    ]
    assert history[:2] == [first, second]
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert [e.label for e in registry.history("triage", label="staging")] == ["staging"]
    summary = registry.list_prompts()
    assert [(p.name, p.latest_version, p.labels) for p in summary] == [("triage", 3, {"production": 3, "staging": 2})]


def test_rollback_returns_to_the_version_before_the_last_move(registry: Registry) -> None:
    for text in ("a", "b", "c"):
        registry.register("triage", config(text), created_by="alice")
    registry.set_label("triage", "production", 1, who="alice")
    registry.set_label("triage", "production", 2, who="alice")
    registry.set_label("triage", "production", 3, who="alice")
    registry.set_label("triage", "production", 3, who="bob", why="re-confirmed")  # recorded, not a move
    back = registry.rollback("triage", "production", who="carol", why="v3 regressed in prod")
    assert (back.kind, back.from_version, back.to_version, back.who) == ("rollback", 3, 2, "carol")
    assert registry.get("triage", label="production").version == 2
    again = registry.rollback("triage", "production", who="carol")  # a rollback is a move: undo the undo
    assert (again.from_version, again.to_version) == (2, 3)
    assert [e.kind for e in registry.history("triage")] == ["set"] * 4 + ["rollback"] * 2


def test_rollback_of_a_label_just_created_is_refused_and_writes_nothing(registry: Registry) -> None:
    registry.register("triage", config(), created_by="alice")
    registry.set_label("triage", "production", 1, who="alice")
    with pytest.raises(InputError, match="no earlier version to roll back to") as error:
        registry.rollback("triage", "production", who="bob")
    assert error.value.field == "label"
    with pytest.raises(NotFound, match="no label 'staging'.*its labels: production"):
        registry.rollback("triage", "staging", who="bob")
    assert len(registry.history("triage")) == 1


def test_unknown_names_versions_and_labels_are_not_found(registry: Registry) -> None:
    registry.register("triage", config(), created_by="alice")
    with pytest.raises(NotFound, match="no prompt named 'nope'"):
        registry.get("nope")
    with pytest.raises(NotFound, match="no version 9 .*versions are 1..1"):
        registry.get("triage", version=9)
    with pytest.raises(NotFound, match="no label 'production' .*labels: none yet"):
        registry.get("triage", label="production")
    with pytest.raises(NotFound):
        registry.versions("nope")
    with pytest.raises(NotFound):
        registry.history("nope")
    with pytest.raises(NotFound, match="no version 2"):
        registry.set_label("triage", "production", 2, who="alice")
    assert registry.history("triage") == []  # the failed move wrote no audit entry


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda r: r.get("triage", version=1, label="production"), "version"),
        (lambda r: r.get("bad name!"), "name"),
        (lambda r: r.set_label("triage", "Production", 1, who="a"), "label"),
        (lambda r: r.set_label("triage", "production", 1, who=" "), "who"),
        (lambda r: r.set_label("triage", "production", 1, who="a", why="x\x00y"), "why"),
        (
            lambda r: r.register("triage", config(params=Decoding(extra={"api_key": "sk-x"})), created_by="a"),
            "config.params.extra.api_key",
        ),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(registry: Registry, call, field: str) -> None:
    registry.register("triage", config(), created_by="alice")
    with pytest.raises(InputError) as error:
        call(registry)
    assert error.value.field == field
    assert len(registry.versions("triage")) == 1 and registry.history("triage") == []


def test_diff_shows_template_examples_parameters_and_scores(registry: Registry) -> None:
    registry.register("triage", config("Classify the review."), lineage=Lineage(test_score=0.5), created_by="a")
    registry.register("triage", rich_config(), lineage=Lineage(test_score=0.75), created_by="a")
    text = registry.diff("triage", 1, 2)
    assert "-Classify the review.\n+Answer in JSON." in text
    assert '+output: {"label": "positive"}' in text
    assert re.search(r'-\s+"temperature": 0.0,?\n(.*\n)*\+\s+"temperature": 0.3', text)
    assert text.endswith("test_score: 0.5000 -> 0.7500 (+0.2500)")
    assert registry.diff("triage", 2, 2) == ""


def test_label_events_check_their_invariants() -> None:
    fields = {"id": 1, "name": "t", "label": "production", "who": "a", "at": datetime.now(UTC)}
    with pytest.raises(ValidationError, match="leaves the label where it was"):
        LabelEvent(kind="refuse", from_version=1, to_version=2, **fields)
    assert not LabelEvent(kind="set", from_version=2, to_version=2, **fields).moved
    assert LabelEvent(kind="rollback", from_version=3, to_version=2, **fields).moved


def test_the_patterns_are_the_documented_ones() -> None:
    assert re.fullmatch(LABEL_PATTERN, "production") and re.fullmatch(LABEL_PATTERN, "canary-2.b_x")
    assert not re.fullmatch(LABEL_PATTERN, "Production") and not re.fullmatch(LABEL_PATTERN, "-x")
    assert re.fullmatch(NAME_PATTERN, "Support.Triage-2") and not re.fullmatch(NAME_PATTERN, "../etc")
