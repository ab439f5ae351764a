import pytest

from promptopt.engine import parse_label, parse_output
from promptopt.spec import OutputSpec

LABELS = ("positive", "negative")


@pytest.mark.parametrize(
    "text,label",
    [
        ("positive", "positive"),
        (" Negative.", "negative"),
        ("**POSITIVE**", "positive"),
        ("The sentiment of this review is negative, not positive", "negative"),
        ("I think it's positive", "positive"),
    ],
)
def test_labels_are_found_robustly(text, label):
    assert parse_label(text, LABELS) == (label, None)


def test_no_label_is_a_parse_error_not_a_guess():
    value, error = parse_label("I cannot tell", LABELS)
    assert value is None and "no label" in error


def test_longer_label_wins_at_same_position():
    assert parse_label("very positive", ("positive", "very positive"))[0] == "very positive"


def test_json_output_with_schema():
    spec = OutputSpec(type="json", schema={"type": "object", "required": ["a"]})
    assert parse_output('Sure: {"a": 1} done', spec) == ({"a": 1}, None)
    value, error = parse_output('{"b": 2}', spec)
    assert value == {"b": 2} and "schema" in error
    assert parse_output("nope", spec)[0] is None
