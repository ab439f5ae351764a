"""exact_match, contains and levenshtein: what normalization does, and what is compared."""

import pytest

from promptopt.scorers import normalize
from promptopt.spec._scorers import Normalize
from tests.scorers.helpers import row, score


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "hello, world!"),
        ({"case": False}, "Hello, World!"),
        ({"punctuation": True}, "hello world"),
        ({"whitespace": False}, "hello,   world!"),
        ({"strip": False}, " hello, world! "),
        ({"strip": False, "whitespace": False}, "  hello,   world! "),
    ],
)
def test_normalize_options(options, expected):
    assert normalize("  Hello,   World! ", Normalize(**options)) == expected


def test_punctuation_removal_covers_unicode_quotes_and_dashes():
    assert normalize("“Yes” — sure…", Normalize(punctuation=True)) == "yes sure"


@pytest.mark.parametrize(
    ("normalize_opts", "output", "value"),
    [
        ({}, "  POSITIVE ", 1.0),
        ({"case": False}, "POSITIVE", 0.0),
        ({}, "positive.", 0.0),
        ({"punctuation": True}, "positive.", 1.0),
        ({"strip": False}, " positive", 0.0),
    ],
)
def test_exact_match_follows_its_normalization(build, normalize_opts, output, value):
    scorer = build({"type": "exact_match", "normalize": normalize_opts})
    assert score(scorer, row(output, "positive")).value == value


def test_exact_match_prefers_the_parsed_value_over_the_raw_text(build):
    scorer = build({"type": "exact_match"})
    assert score(scorer, row("The sentiment is positive.", "positive", parsed="positive")).value == 1.0


def test_an_unparsed_label_answer_scores_zero_not_an_error(build):
    scorer = build({"type": "exact_match"})
    assert score(scorer, row("I cannot tell.", "positive", parsed=None)).value == 0.0


def test_structured_values_compare_by_content_not_key_order(build):
    scorer = build({"type": "exact_match"})
    result = score(scorer, row('{"b": 2, "a": 1}', {"a": 1, "b": 2}, parsed={"b": 2, "a": 1}))
    assert result.value == 1.0


def test_numbers_compare_as_text(build):
    scorer = build({"type": "exact_match"})
    assert score(scorer, row("42", 42)).value == 1.0


def test_contains_after_normalization(build):
    scorer = build({"type": "contains", "normalize": {"punctuation": True}})
    assert score(scorer, row("I think: New-York!", "newyork")).value == 1.0
    assert score(scorer, row("I think: Boston", "newyork")).value == 0.0


def test_levenshtein_is_normalized_similarity(build):
    scorer = build({"type": "levenshtein"})
    assert score(scorer, row("kitten", "sitting")).value == pytest.approx(1 - 3 / 7)
    assert score(scorer, row("ABC", "abc")).value == 1.0
    assert score(scorer, row("abc", "xyz")).value == 0.0
