"""regex, json_valid, json_field and numeric."""

import pytest

from promptopt.errors import InputError, ScorerError
from promptopt.scorers._numeric import closeness, first_number
from tests.scorers.helpers import row, score

SCHEMA = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}


def test_regex_searches_the_raw_output(build):
    scorer = build({"type": "regex", "pattern": r"(?i)\byes\b"})
    assert score(scorer, row("Well... YES, indeed")).value == 1.0
    assert score(scorer, row("yesterday")).value == 0.0


@pytest.mark.parametrize(
    ("output", "value"),
    [
        ('{"age": 3}', 1.0),
        ('  {"age": 3}\n', 1.0),
        ('```json\n{"age": 3}\n```', 1.0),
        ('Here it is: {"age": 3}', 0.0),
        ('{"age": 3', 0.0),
        ("", 0.0),
    ],
)
def test_json_valid_without_schema(build, output, value):
    assert score(build({"type": "json_valid"}), row(output)).value == value


def test_json_valid_rejects_a_schema_mismatch_and_says_why(build):
    scorer = build({"type": "json_valid", "schema": SCHEMA})
    good, wrong_type, missing = score(scorer, row('{"age": 3}'), row('{"age": "three"}'), row("{}"))
    assert good.value == 1.0
    assert wrong_type.value == 0.0 and "schema" in wrong_type.detail and "integer" in wrong_type.detail
    assert missing.value == 0.0 and "age" in missing.detail


def test_an_invalid_schema_is_a_spec_error_at_build_time(build):
    with pytest.raises(InputError, match=r"scorers\[0\]"):
        build({"type": "json_valid", "schema": {"type": "no-such-type"}})


def test_json_field_gives_partial_credit_per_field(build):
    scorer = build({"type": "json_field", "fields": ["name", "address.city", "tags.0"]})
    expected = {"name": "Ada", "address": {"city": "London"}, "tags": ["math", "x"]}
    result = score(scorer, row('{"name": "Ada", "address": {"city": "Paris"}, "tags": ["math"]}', expected))
    assert result.value == pytest.approx(2 / 3)
    assert result.detail == "wrong: address.city"


def test_json_field_accepts_expected_as_json_text_and_uses_the_parsed_output(build):
    scorer = build({"type": "json_field", "fields": ["a"]})
    assert score(scorer, row('noise {"a": 1} noise', '{"a": 1}', parsed={"a": 1})).value == 1.0


def test_json_field_on_output_that_is_not_json_scores_zero(build):
    scorer = build({"type": "json_field", "fields": ["a"]})
    assert score(scorer, row("no json here", {"a": 1})).value == 0.0


def test_json_field_missing_in_the_output_is_wrong_missing_in_expected_is_an_error(build):
    scorer = build({"type": "json_field", "fields": ["a", "b"]})
    assert score(scorer, row('{"a": 1}', {"a": 1, "b": 2})).value == 0.5
    with pytest.raises(ScorerError, match="no field b"):
        score(scorer, row('{"a": 1, "b": 2}', {"a": 1}))
    with pytest.raises(ScorerError, match="not JSON"):
        score(scorer, row('{"a": 1}', "{broken"))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("The answer is 42.", 42.0),
        ("-3.5 degrees", -3.5),
        ("1,234.5 people", 1234.5),
        ("2e3", 2000.0),
        ("none", None),
        (7, 7.0),
    ],
)
def test_first_number(text, number):
    assert first_number(text) == number


def test_closeness_is_flat_within_tolerance_then_linear():
    assert closeness(10.4, 10, tolerance=0.5, scale=2) == 1.0
    assert closeness(11.5, 10, tolerance=0.5, scale=2) == pytest.approx(0.5)
    assert closeness(7.5, 10, tolerance=0.5, scale=2) == 0.0


def test_numeric_scorer(build):
    scorer = build({"type": "numeric", "tolerance": 1, "scale": 4})
    results = score(scorer, row("about 11", 10), row("13 I think", "10"), row("20", 10), row("no idea", 10))
    assert [r.value for r in results] == [1.0, pytest.approx(0.5), 0.0, 0.0]


def test_numeric_with_a_non_numeric_reference_is_an_error(build):
    with pytest.raises(ScorerError, match="not a number"):
        score(build({"type": "numeric"}), row("3", "three"))
