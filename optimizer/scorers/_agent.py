"""Scorers of what a code task did, read from the row's trace: the tool calls it made, the model calls it took.

A one-prompt task has an empty trace: it made no tool calls and took 0 steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from promptopt.errors import ScorerError
from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer, require_expected
from promptopt.spec import StepsSpec, ToolCallSpec
from promptopt.tasks import Span

_FORM = '[{"name": "lookup", "arguments": {"city": "Paris"}}, ...]'


@dataclass(frozen=True)
class _Call:
    """A tool call as compared: the tool's name and its arguments (None when they are not a JSON object)."""

    name: str
    arguments: dict[str, Any] | None


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``1`` equals ``1.0``, but ``true`` is not ``1`` and ``"1"`` is not ``1``.

    Example:
        >>> json_equal({"n": 1, "tags": ["a"]}, {"tags": ["a"], "n": 1.0}), json_equal(True, 1)
        (True, False)
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _parse_arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    if raw is None or isinstance(raw, str) and not raw.strip():
        return {}  # a call of a tool without parameters; some providers send "" rather than "{}"
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def trace_calls(trace: Sequence[Span], prompt: str | None = None) -> list[_Call]:
    """The tool calls of the trace (of one prompt's spans when ``prompt`` is given), in the order they were made."""
    calls = []
    for span in trace:
        if prompt is None or span.prompt == prompt:
            for call in span.tool_calls or ():
                function = call.get("function")
                function = function if isinstance(function, dict) else {}
                calls.append(_Call(str(function.get("name") or ""), _parse_arguments(function.get("arguments"))))
    return calls


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value, default=str)[:80]}"


def _expected_call(item: Any, where: str, scorer: str) -> _Call:
    problem = None
    if not isinstance(item, dict):
        problem = f"is a {_shown(item)}, not an object"
    elif set(item) - {"name", "arguments"}:
        problem = f"has unknown keys {sorted(set(item) - {'name', 'arguments'})}"
    elif not isinstance(item.get("name"), str) or not item["name"]:
        problem = "needs a 'name', the tool's name"
    elif not isinstance(item.get("arguments", {}), dict):
        problem = f"has 'arguments' {_shown(item['arguments'])}; give an object of argument values"
    if problem is not None:
        raise ScorerError(
            f"scorer {scorer!r}: the case's {where} {problem}; each expected call is "
            '{"name": ..., "arguments": {...}} (arguments may be left out: none)'
        )
    return _Call(item["name"], item.get("arguments", {}))


def expected_calls(expected: Any, field: str, scorer: str) -> list[_Call]:
    """The calls listed under ``expected[field]``.

    Raises:
        ScorerError: ``expected`` is not an object with that key, or the key does not hold a list of calls.
    """
    if not isinstance(expected, dict) or field not in expected:
        raise ScorerError(
            f"scorer {scorer!r}: the case's expected must be an object with a {field!r} key holding the expected "
            f"tool calls, like {{{field!r}: {_FORM}}}; got {_shown(expected)}"
        )
    items = expected[field]
    if not isinstance(items, list | tuple):
        raise ScorerError(
            f"scorer {scorer!r}: the case's expected.{field} must be a list like {_FORM}; got {_shown(items)}"
        )
    return [_expected_call(item, f"expected.{field}[{i}]", scorer) for i, item in enumerate(items)]


def most_matched(expected: Sequence[_Call], actual: Sequence[_Call], same: Callable[[_Call, _Call], bool]) -> int:
    """The most expected calls that distinct actual calls match, in any order (a maximum bipartite matching).

    A greedy pass could give the only Paris call to an expected call that any call would have matched.
    """
    owner: dict[int, int] = {}  # actual index -> the expected index it matches

    def claim(e: int, seen: set[int]) -> bool:
        for a, call in enumerate(actual):
            if a not in seen and same(expected[e], call):
                seen.add(a)
                if a not in owner or claim(owner[a], seen):
                    owner[a] = e
                    return True
        return False

    return sum(claim(e, set()) for e in range(len(expected)))


def most_matched_in_order(
    expected: Sequence[_Call], actual: Sequence[_Call], same: Callable[[_Call, _Call], bool]
) -> int:
    """The most expected calls that actual calls match in the same order (other calls may come between)."""
    best = [[0] * (len(actual) + 1) for _ in range(len(expected) + 1)]
    for i, want in enumerate(expected, 1):
        for j, got in enumerate(actual, 1):
            hit = best[i - 1][j - 1] + 1 if same(want, got) else 0
            best[i][j] = max(hit, best[i - 1][j], best[i][j - 1])
    return best[-1][-1]


class ToolCallScorer(SpecScorer):
    """The share of the case's expected tool calls that the trace's calls match, each actual call used once.

    A call matches when its name is the expected one and its arguments (a JSON string in the trace, parsed;
    one that does not parse to an object matches nothing) contain every expected argument with an equal JSON
    value (``match: subset``) or equal them (``match: exact``). ``order: strict`` counts only calls made in the
    expected order. Calls nobody expected cost nothing, except that a case expecting no calls scores 1 only
    when none were made. A one-prompt task's trace is empty: it made no calls.
    """

    def __init__(self, spec: ToolCallSpec) -> None:
        super().__init__(spec)
        self._exact, self._strict = spec.match == "exact", spec.order == "strict"
        self._prompt, self._field = spec.prompt, spec.expected_field

    def _same(self, want: _Call, got: _Call) -> bool:
        if want.name != got.name or got.arguments is None or want.arguments is None:
            return False
        if self._exact:
            return json_equal(want.arguments, got.arguments)
        return all(k in got.arguments and json_equal(v, got.arguments[k]) for k, v in want.arguments.items())

    async def score(self, row: ScoreInput) -> ScoreResult:
        expected = expected_calls(require_expected(row, self.name), self._field, self.name)
        actual = trace_calls(row.trace, self._prompt)
        if not expected:
            made = f"{len(actual)} ({', '.join(c.name for c in actual)})" if actual else "none"
            return ScoreResult(value=float(not actual), detail=f"expected no tool calls, got {made}")
        count = most_matched_in_order if self._strict else most_matched
        hits = count(expected, actual, self._same)
        return ScoreResult(
            value=hits / len(expected), detail=f"{hits} of {len(expected)} expected calls matched, {len(actual)} made"
        )


def steps_score(steps: int, limit: int) -> float:
    """1 up to ``limit`` steps, then falling linearly to 0 at twice the limit.

    Example:
        >>> [steps_score(n, 4) for n in (0, 4, 5, 6, 8, 9)]
        [1.0, 1.0, 0.75, 0.5, 0.0, 0.0]
    """
    return 1.0 if steps <= limit else max(0.0, (2 * limit - steps) / limit)


class StepsScorer(SpecScorer):
    """Scores the number of model calls in the trace (of one ``prompt``'s spans when given), cache hits and
    failed calls included: 1 up to ``max``, falling linearly to 0 at ``2 * max``. A one-prompt task has an
    empty trace: 0 steps."""

    needs_expected = False

    def __init__(self, spec: StepsSpec) -> None:
        super().__init__(spec)
        self._max, self._prompt = spec.max, spec.prompt

    async def score(self, row: ScoreInput) -> ScoreResult:
        steps = sum(self._prompt is None or span.prompt == self._prompt for span in row.trace)
        return ScoreResult(value=steps_score(steps, self._max), detail=f"{steps} model calls (max {self._max})")
