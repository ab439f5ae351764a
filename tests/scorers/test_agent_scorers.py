"""Scorers of a code task's trace: tool_call (the calls made against the expected ones) and steps (model calls);
and the trace as a custom scorer receives it."""

import json
import textwrap

import pytest
from pydantic import ValidationError

from promptopt.errors import InputError, ScorerError
from promptopt.scorers import ScoreInput, StepsScorer, ToolCallScorer
from promptopt.spec import StepsSpec, ToolCallSpec, spec_from_data
from promptopt.tasks import Span
from tests.scorers.helpers import score, spec_of


def call(name, arguments=None, *, raw=None):
    """A tool call as the trace holds it: OpenAI's format, arguments as a JSON string (or ``raw`` as given)."""
    text = raw if raw is not None else json.dumps(arguments or {})
    return {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": text}}


def span(*calls, prompt="agent"):
    return Span(prompt=prompt, input={"q": "x"}, output="", tool_calls=calls or None)


def traced(expected, *spans):
    return ScoreInput(input={"q": "x"}, output="done", expected=expected, trace=spans)


def want(*calls):
    return {"tool_calls": [{"name": n, "arguments": a} if a is not None else {"name": n} for n, a in calls]}


def value(build, row, **options):
    return score(build({"type": "tool_call", **options}), row).value


PARIS = ("lookup", {"city": "Paris"})


def test_built_from_the_spec_as_the_two_scorer_classes(build):
    assert isinstance(build({"type": "tool_call"}), ToolCallScorer)
    steps = build({"type": "steps", "max": 3})
    assert isinstance(steps, StepsScorer) and not steps.needs_expected


def test_subset_needs_every_expected_argument_exact_needs_equal_arguments(build):
    row = traced(want(PARIS), span(call("lookup", {"city": "Paris", "units": "metric"})))
    assert value(build, row) == 1.0
    assert value(build, row, match="exact") == 0.0
    same_keys_other_order = traced(want(("f", {"a": 1, "b": 2})), span(call("f", {"b": 2, "a": 1})))
    assert value(build, same_keys_other_order, match="exact") == 1.0


def test_a_wrong_value_or_a_missing_argument_does_not_match(build):
    assert value(build, traced(want(PARIS), span(call("lookup", {"city": "Rome"})))) == 0.0
    assert value(build, traced(want(PARIS), span(call("lookup", {"town": "Paris"})))) == 0.0
    assert value(build, traced(want(PARIS), span(call("search", {"city": "Paris"})))) == 0.0


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (1, 1.0, True),  # one JSON number
        (True, 1, False),  # JSON true is not 1, although True == 1 in Python
        ("1", 1, False),
        (None, None, True),
        (None, "null", False),
        ({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2.0}]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),  # subset is of the top-level arguments; values compare whole
        ([1, 2], [2, 1], False),
    ],
)
def test_argument_values_compare_as_json(build, expected, actual, matches):
    row = traced(want(("f", {"x": expected})), span(call("f", {"x": actual})))
    assert value(build, row) == float(matches)


def test_the_score_is_the_share_of_expected_calls_matched(build):
    row = traced(
        want(PARIS, ("lookup", {"city": "Rome"}), ("answer", None)),
        span(call("lookup", {"city": "Paris"}), call("answer", {"text": "sunny"})),
    )
    result = score(build({"type": "tool_call"}), row)
    assert result.value == pytest.approx(2 / 3)
    assert result.detail == "2 of 3 expected calls matched, 2 made"


def test_each_actual_call_matches_at_most_one_expected_call(build):
    assert value(build, traced(want(PARIS, PARIS), span(call(*PARIS)))) == 0.5
    assert value(build, traced(want(PARIS, PARIS), span(call(*PARIS)), span(call(*PARIS)))) == 1.0


def test_calls_are_paired_to_match_as_many_as_possible_not_greedily(build):
    # The first expected call (no arguments: any lookup) could take the only Paris call; a greedy pass
    # would then leave the second unmatched.
    row = traced(want(("lookup", None), PARIS), span(call(*PARIS), call("lookup", {"city": "Rome"})))
    assert value(build, row) == 1.0


def test_strict_order_counts_only_calls_made_in_the_expected_order(build):
    a, b = ("a", None), ("b", None)
    reversed_row = traced(want(a, b), span(call("b")), span(call("a")))
    assert value(build, reversed_row) == 1.0
    assert value(build, reversed_row, order="strict") == 0.5
    with_others_between = traced(want(a, b), span(call("a"), call("x")), span(call("b")))
    assert value(build, with_others_between, order="strict") == 1.0


def test_strict_order_still_uses_each_call_once(build):
    row = traced(want(("a", None), ("a", None)), span(call("a")))
    assert value(build, row, order="strict") == 0.5


def test_calls_nobody_expected_cost_nothing_unless_none_were_expected(build):
    assert value(build, traced(want(PARIS), span(call(*PARIS), call("search"), call("answer")))) == 1.0
    assert value(build, traced(want(), span())) == 1.0
    none_expected = score(build({"type": "tool_call"}), traced(want(), span(call("search"))))
    assert (none_expected.value, none_expected.detail) == (0.0, "expected no tool calls, got 1 (search)")


@pytest.mark.parametrize("raw", ["{city: Paris", '{"city": "Paris"', "[1, 2]", '"Paris"'])
def test_arguments_that_are_not_a_json_object_match_nothing(build, raw):
    row = traced(want(("lookup", None)), span(call("lookup", raw=raw)))
    assert value(build, row) == 0.0  # not even an expected call with no arguments
    assert value(build, traced(want(("lookup", None)), span(call("lookup", raw=raw), call("lookup")))) == 1.0


def test_empty_arguments_are_a_call_without_arguments(build):
    row = traced(want(("now", {})), span(call("now", raw="")))
    assert value(build, row, match="exact") == 1.0


def test_one_prompt_task_has_no_calls(build):
    assert value(build, traced(want())) == 1.0
    assert value(build, traced(want(PARIS))) == 0.0


def test_prompt_option_reads_only_that_prompts_calls(build):
    row = traced(want(PARIS), span(call(*PARIS), prompt="plan"), span(call("answer"), prompt="act"))
    assert value(build, row) == 1.0
    assert value(build, row, prompt="plan") == 1.0
    assert value(build, row, prompt="act") == 0.0


def test_expected_field_names_the_key_holding_the_calls(build):
    row = traced({"calls": [{"name": "lookup", "arguments": {"city": "Paris"}}], "answer": "sunny"}, span(call(*PARIS)))
    assert value(build, row, expected_field="calls") == 1.0
    with pytest.raises(ScorerError, match="object with a 'tool_calls' key"):
        value(build, row)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("lookup", r"expected must be an object with a 'tool_calls' key .*got str \"lookup\""),
        ({"calls": []}, "expected must be an object with a 'tool_calls' key"),
        ({"tool_calls": "lookup"}, r"expected.tool_calls must be a list like \[\{\"name\""),
        ({"tool_calls": ["lookup"]}, r"expected.tool_calls\[0\] is a str \"lookup\", not an object"),
        ({"tool_calls": [{"tool": "lookup"}]}, r"expected.tool_calls\[0\] has unknown keys \['tool'\]"),
        ({"tool_calls": [{"name": 3}]}, r"expected.tool_calls\[0\] needs a 'name'"),
        ({"tool_calls": [{"name": "a"}, {"name": ""}]}, r"expected.tool_calls\[1\] needs a 'name'"),
        ({"tool_calls": [{"name": "a", "arguments": '{"x": 1}'}]}, "give an object of argument values"),
    ],
)
def test_a_malformed_expected_value_names_the_field_and_the_form(build, expected, message):
    with pytest.raises(ScorerError, match=message) as info:
        value(build, traced(expected, span(call("lookup"))))
    assert "scorer 'tool_call'" in str(info.value)


def test_a_case_without_expected_is_an_error_not_a_zero(build):
    with pytest.raises(ScorerError, match="has none"):
        value(build, traced(None, span(call("lookup"))))


@pytest.mark.parametrize(("steps", "expected"), [(0, 1.0), (2, 1.0), (3, 0.5), (4, 0.0), (7, 0.0)])
def test_steps_score_one_up_to_max_then_fall_linearly_to_zero_at_twice_max(build, steps, expected):
    result = score(build({"type": "steps", "max": 2}), traced(None, *(span() for _ in range(steps))))
    assert (result.value, result.detail) == (expected, f"{steps} model calls (max 2)")


def test_steps_count_failed_calls_and_only_the_named_prompt_when_given(build):
    trace = (span(prompt="plan"), span(prompt="act"), span(prompt="act"), Span(prompt="act", input={}, error="boom"))
    row = traced(None, *trace)
    assert score(build({"type": "steps", "max": 2}), row).value == 0.0  # 4 calls
    assert score(build({"type": "steps", "max": 2, "prompt": "act"}), row).value == 0.5  # 3 calls
    assert score(build({"type": "steps", "max": 2, "prompt": "plan"}), row).value == 1.0


def test_steps_of_a_one_prompt_task_are_zero(build):
    assert score(build({"type": "steps", "max": 1}), traced(None)).detail == "0 model calls (max 1)"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"type": "tool_call", "ordr": "strict"}, "extra_forbidden"),
        ({"type": "tool_call", "match": "fuzzy"}, "literal_error"),
        ({"type": "tool_call", "order": "sorted"}, "literal_error"),
        ({"type": "tool_call", "expected_field": ""}, "string_too_short"),
        ({"type": "steps"}, "missing"),
        ({"type": "steps", "max": 0}, "greater_than_equal"),
        ({"type": "steps", "max": 3, "min": 1}, "extra_forbidden"),
    ],
)
def test_spec_entries_reject_unknown_options_and_bad_values(entry, problem):
    with pytest.raises(ValidationError) as info:
        spec_of(entry)
    assert [e["type"] for e in info.value.errors()] == [problem]


def spec_with(*scorers):
    """A code task's spec (a one-prompt task records no trace: trace scorers are refused there)."""
    task = {
        "name": "t",
        "model": "fake/m",
        "function": "agent:run",
        "prompts": {"agent": {"prompt": [{"role": "user", "content": "{{q}}"}]}},
    }
    return {"task": task, "dataset": {"file": "d.jsonl"}, "scorers": list(scorers)}


def test_a_spec_takes_both_scorers():
    spec = spec_from_data(spec_with({"type": "tool_call", "order": "strict"}, {"type": "steps", "max": 4}), "s.yaml")
    tool_call, steps = spec.scorers
    assert isinstance(tool_call, ToolCallSpec) and (tool_call.match, tool_call.order) == ("subset", "strict")
    assert isinstance(steps, StepsSpec) and (steps.key, steps.max, steps.prompt) == ("steps", 4, None)


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"type": "tool_call", "ordr": "strict"}, "scorers[1].ordr", "unknown field"),
        ({"type": "steps", "max": 0}, "scorers[1].max", "greater than or equal to 1"),
    ],
)
def test_a_bad_entry_in_a_spec_names_its_field(entry, field, message):
    with pytest.raises(InputError, match=message) as info:
        spec_from_data(spec_with({"type": "exact_match"}, entry), "s.yaml")
    assert (info.value.file, info.value.field) == ("s.yaml", field)


CUSTOM = """
def tools(trace):
    # Plain values only: the worker imports no promptopt.
    assert type(trace) is list and all(type(s) is dict for s in trace), trace
    names = [c["function"]["name"] for s in trace for c in s["tool_calls"] or []]
    assert names == ["lookup", "answer"], names
    assert [s["prompt"] for s in trace] == ["plan", "act"]
    assert json.loads(trace[0]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert trace[0]["input"] == {"q": "x"} and trace[1]["output"] == ""
    return 0.75


def empty(trace):
    return 1.0 if trace == [] else 0.0


def unusual(trace):
    return 1.0 if trace[0]["input"]["when"] == "Point(1, 2)" else 0.0

"""


@pytest.fixture
def custom(build, tmp_path):
    (tmp_path / "trace_fns.py").write_text("import json\n" + textwrap.dedent(CUSTOM))
    return lambda name: build({"type": "custom", "function": f"trace_fns:{name}"}, base_dir=tmp_path)


def test_a_custom_scorer_receives_the_trace_as_plain_dicts(custom):
    row = traced(None, span(call(*PARIS), prompt="plan"), span(call("answer"), prompt="act"))
    assert score(custom("tools"), row).value == 0.75


def test_a_custom_scorer_gets_an_empty_trace_for_a_one_prompt_task(custom):
    assert score(custom("empty"), traced(None)).value == 1.0


def test_a_trace_value_that_is_not_json_reaches_a_custom_scorer_as_its_text(custom):
    class Point:
        def __str__(self):
            return "Point(1, 2)"

    row = traced(None, Span(prompt="p", input={"when": Point()}))
    assert score(custom("unusual"), row).value == 1.0
