"""Regex scorer: does the raw output contain a match of the pattern? Needs no reference."""

from __future__ import annotations

import re

from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer
from promptopt.spec import RegexSpec


class RegexScorer(SpecScorer):
    """1 when ``pattern`` is found anywhere in the raw output (``re.search``), else 0.

    Use inline flags for options, e.g. ``(?i)^yes\\b`` for a case-insensitive answer that starts with yes.
    """

    needs_expected = False

    def __init__(self, spec: RegexSpec) -> None:
        super().__init__(spec)
        self._pattern = re.compile(spec.pattern)

    async def score(self, row: ScoreInput) -> ScoreResult:
        return ScoreResult(value=self._pattern.search(row.output) is not None)
