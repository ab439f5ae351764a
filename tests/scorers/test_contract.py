"""The Scorer contract, run against every scorer type built through build_scorers from a spec entry."""

import asyncio
import re

import pytest

from promptopt.errors import ScorerError
from promptopt.models._fake import ScriptedBackend
from promptopt.scorers import ScoreResult
from promptopt.spec import SCORER_TYPES
from promptopt.tasks import Span
from tests.scorers.helpers import row


def traced(output, expected=None, *calls):
    """A code task's row: one span per tool call named in ``calls`` (``None``: a span without tool calls)."""
    spans = tuple(
        Span(
            prompt="agent",
            input={},
            output=output,
            tool_calls=None
            if name is None
            else ({"id": "c", "type": "function", "function": {"name": name, "arguments": "{}"}},),
        )
        for name in calls
    )
    return row(output, expected).model_copy(update={"trace": spans})


def judge_says_same(request):
    # A judge that actually compares: the answer depends on what was rendered into the prompt.
    text = request.messages[0]["content"]
    out = re.search(r"Answer: (.*)", text).group(1)
    ref = re.search(r"Reference: (.*)", text).group(1)
    return "yes" if out.strip().lower() == ref.strip().lower() else "no"


# type -> (extra spec fields, matching row, non-matching row)
CASES = {
    "exact_match": ({}, row("Positive", "positive"), row("negative", "positive")),
    "contains": ({}, row("It is positive.", "positive"), row("It is negative.", "positive")),
    "regex": ({"pattern": r"^\d+$"}, row("42"), row("forty-two")),
    "json_valid": ({"schema": {"type": "object", "required": ["a"]}}, row('{"a": 1}'), row('{"a": 1')),
    "json_field": (
        {"fields": ["a", "b.c"]},
        row('{"a": 1, "b": {"c": 2}}', {"a": 1, "b": {"c": 2}}),
        row('{"a": 0, "b": {"c": 0}}', {"a": 1, "b": {"c": 2}}),
    ),
    "numeric": ({"tolerance": 0.5}, row("about 10.2", 10), row("about 99", 10)),
    "levenshtein": ({}, row("kitten", "kitten"), row("zzzzzz", "kitten")),
    "embedding": (
        {},
        row("The movie was great!", "the movie was great"),
        row("quarterly tax filing deadline", "the movie was great"),
    ),
    "llm_judge": (
        {
            "model": "judge/m",
            "prompt": "Answer: {{output}}\nReference: {{expected}}\nSame?",
            "choices": {"yes": 1, "no": 0},
        },
        row("Paris", "paris"),
        row("Rome", "paris"),
    ),
    "custom": ({"function": "scorer_fns:matches"}, row("Paris", "paris"), row("Rome", "paris")),
    "tool_call": (
        {},
        traced("done", {"tool_calls": [{"name": "lookup"}]}, "lookup", None),
        traced("done", {"tool_calls": [{"name": "lookup"}]}, "search", None),
    ),
    "steps": ({"max": 2}, traced("done", None, None, None), traced("done", None, None, None, None, None)),
}


def test_every_scorer_type_has_a_contract_case():
    assert set(CASES) == set(SCORER_TYPES)


@pytest.fixture(params=sorted(CASES))
def case(request, build):
    kind = request.param
    extra, good, bad = CASES[kind]
    spec = {"type": kind, "name": f"my_{kind}", "weight": 2.5, **extra}
    scorer = build(spec, backend=ScriptedBackend(judge_says_same))
    return kind, scorer, good, bad


def test_name_and_weight_come_from_the_spec(case):
    kind, scorer, _, _ = case
    assert (scorer.name, scorer.weight) == (f"my_{kind}", 2.5)


def test_scores_a_match_above_a_mismatch_within_unit_interval(case):
    _, scorer, good, bad = case

    async def go():
        return await scorer.score(good), await scorer.score(bad)

    high, low = asyncio.run(go())
    assert isinstance(high, ScoreResult) and isinstance(low, ScoreResult)
    assert 0.0 <= low.value < high.value <= 1.0


def test_twenty_concurrent_calls_agree_with_sequential_ones(case):
    _, scorer, good, bad = case
    rows = [good, bad] * 10

    async def go():
        sequential = [(await scorer.score(r)).value for r in rows[:2]]
        concurrent = await asyncio.gather(*(scorer.score(r) for r in rows))
        return sequential, [r.value for r in concurrent]

    sequential, concurrent = asyncio.run(go())
    assert concurrent == sequential * 10


def test_a_row_without_expected_is_scored_only_by_scorers_that_do_not_need_it(case):
    _, scorer, good, _ = case
    no_reference = good.model_copy(update={"expected": None})
    if scorer.needs_expected:
        with pytest.raises(ScorerError, match="expected"):
            asyncio.run(scorer.score(no_reference))
    else:
        assert 0.0 <= asyncio.run(scorer.score(no_reference)).value <= 1.0


def test_needs_expected_is_false_exactly_for_reference_free_scorers(case):
    kind, scorer, _, _ = case
    # The judge here reads {{expected}}, so it needs one; custom functions decide for themselves.
    assert scorer.needs_expected == (kind not in {"regex", "json_valid", "custom", "steps"})
