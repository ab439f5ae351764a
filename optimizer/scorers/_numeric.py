"""Numeric scorer: the first number in the output against the expected number, with tolerance and slope."""

from __future__ import annotations

import math
import re
from typing import Any

from promptopt.errors import ScorerError
from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer, answer, require_expected
from promptopt.spec import NumericSpec

# Thousands separators only in groups of three ("1,234.5"), so that "3,4" reads as 3 and then 4.
_NUMBER = re.compile(r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def first_number(value: Any) -> float | None:
    """The first number in ``value`` (a number itself, or text containing one); None when there is none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    match = _NUMBER.search(str(value))
    if match is None:
        return None
    number = float(match.group().replace(",", ""))
    return number if math.isfinite(number) else None


def closeness(got: float, expected: float, tolerance: float, scale: float) -> float:
    """1 within ``tolerance`` of ``expected``, falling linearly to 0 at ``tolerance + scale``.

    Example:
        >>> closeness(10.5, 10, tolerance=0, scale=1)
        0.5
    """
    excess = abs(got - expected) - tolerance
    return 1.0 if excess <= 0 else max(0.0, 1.0 - excess / scale)


class NumericScorer(SpecScorer):
    """Scores the first number in the answer; an answer without a number scores 0."""

    def __init__(self, spec: NumericSpec) -> None:
        super().__init__(spec)
        self._tolerance, self._scale = spec.tolerance, spec.scale

    async def score(self, row: ScoreInput) -> ScoreResult:
        raw = require_expected(row, self.name)
        expected = None if isinstance(raw, bool) else first_number(raw)
        if expected is None:
            raise ScorerError(f"scorer {self.name!r}: the expected value {raw!r} is not a number")
        got = first_number(answer(row))
        if got is None:
            return ScoreResult(value=0.0, detail="no number in the output")
        value = closeness(got, expected, self._tolerance, self._scale)
        return ScoreResult(value=value, detail=f"read {got:g}")
