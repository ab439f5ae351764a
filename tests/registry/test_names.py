"""One rule per kind of name (promptopt.names): every model that takes a prompt name or a label checks the same
pattern, so a name the spec accepts is one the registry, the logs, the HTTP API and the SDK accept."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel, ValidationError

from promptopt import names, sdk
from promptopt.logs import FeedbackIn, LogIn, LogQuery
from promptopt.registry import PromptVersion, promote_if_better
from promptopt.server._schemas import LabelRequest, Selector
from promptopt.spec import RegistrySettings, TaskSpec


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("support-triage", True),
        ("Support.Triage_2", True),
        ("a" * 100, True),
        ("a" * 101, False),
        ("-x", False),
        ("../etc", False),
        ("", False),
        ("triage\n", False),
        (None, False),
        (3, False),
    ],
)
def test_a_prompt_name(value: object, ok: bool) -> None:
    assert names.is_prompt_name(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("production", True),
        ("canary-2.b_x", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("Production", False),
        ("-x", False),
        ("production\n", False),
        (None, False),
    ],
)
def test_a_label(value: object, ok: bool) -> None:
    assert names.is_label(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [(1, True), (names.MAX_VERSION, True), (0, False), (names.MAX_VERSION + 1, False), (True, False), ("1", False)],
)
def test_a_version(value: object, ok: bool) -> None:
    assert names.is_version(value) is ok


def test_log_ids_take_colons_and_128_characters() -> None:
    assert names.is_log_id("req:2024-01-01.a_b") and names.is_log_id("a" * 128)
    assert not names.is_log_id("a" * 129) and not names.is_log_id(":x")


def _pattern(model: type[BaseModel], field: str) -> str:
    schema = model.model_json_schema()["properties"][field]
    found = [s["pattern"] for s in [schema, *schema.get("anyOf", [])] if "pattern" in s]
    assert len(found) == 1, schema
    return found[0]


@pytest.mark.parametrize(
    ("model", "field"), [(TaskSpec, "name"), (PromptVersion, "name"), (LogIn, "prompt"), (LogQuery, "prompt")]
)
def test_every_prompt_name_field_checks_the_one_rule(model: type[BaseModel], field: str) -> None:
    assert _pattern(model, field) == names.NAME_PATTERN


@pytest.mark.parametrize(
    ("model", "field"), [(RegistrySettings, "label"), (LogIn, "label"), (LogQuery, "label"), (Selector, "label")]
)
def test_every_label_field_checks_the_one_rule(model: type[BaseModel], field: str) -> None:
    assert _pattern(model, field) == names.LABEL_PATTERN


def test_log_and_feedback_ids_check_the_one_rule() -> None:
    assert _pattern(LogIn, "id") == _pattern(FeedbackIn, "id") == _pattern(FeedbackIn, "log_id") == names.LOG_ID_PATTERN


def test_a_spec_label_is_capped_like_the_registry_caps_it() -> None:
    assert RegistrySettings(label="a" * 64).label == "a" * 64
    with pytest.raises(ValidationError, match="label"):
        RegistrySettings(label="a" * 65)


@pytest.mark.parametrize("model", [Selector, LabelRequest])
def test_the_api_takes_versions_up_to_the_stores_limit(model: type[BaseModel]) -> None:
    assert model(version=names.MAX_VERSION).version == names.MAX_VERSION  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="version"):
        model(version=names.MAX_VERSION + 1)  # type: ignore[call-arg]


def test_one_default_label_for_the_spec_the_gate_and_the_sdk() -> None:
    assert names.is_label(names.DEFAULT_LABEL)
    assert RegistrySettings().label == sdk.DEFAULT_LABEL == names.DEFAULT_LABEL
    assert inspect.signature(promote_if_better).parameters["label"].default == names.DEFAULT_LABEL
    assert sdk.PromptRef.of("triage").label == names.DEFAULT_LABEL
