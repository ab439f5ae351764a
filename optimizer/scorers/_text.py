"""Text comparison scorers: exact match, containment and Levenshtein similarity, after normalization."""

from __future__ import annotations

import abc
import re
import unicodedata

from rapidfuzz.distance import Levenshtein

from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer, answer, as_text, require_expected
from promptopt.spec import ContainsSpec, ExactMatchSpec, LevenshteinSpec, Normalize

_SPACE = re.compile(r"\s+")


def normalize(text: str, options: Normalize) -> str:
    """Apply the spec's normalization options to ``text``.

    Example:
        >>> normalize("  Hello,   World! ", Normalize(punctuation=True))
        'hello world'
    """
    if options.case:
        text = text.casefold()
    if options.punctuation:
        # Unicode categories rather than string.punctuation, so curly quotes and dashes go too.
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    if options.whitespace:
        text = _SPACE.sub(" ", text)
    if options.strip:
        text = text.strip()
    return text


class _TextScorer(SpecScorer):
    def __init__(self, spec: ExactMatchSpec | ContainsSpec | LevenshteinSpec) -> None:
        super().__init__(spec)
        self._normalize = spec.normalize

    async def score(self, row: ScoreInput) -> ScoreResult:
        expected = normalize(as_text(require_expected(row, self.name)), self._normalize)
        got = normalize(as_text(answer(row)), self._normalize)
        return ScoreResult(value=self._compare(got, expected))

    @abc.abstractmethod
    def _compare(self, got: str, expected: str) -> float:
        """Score normalized text against the normalized reference."""


class ExactMatchScorer(_TextScorer):
    """1 when the answer equals the expected value after normalization, else 0."""

    def _compare(self, got: str, expected: str) -> float:
        return float(got == expected)


class ContainsScorer(_TextScorer):
    """1 when the expected value occurs inside the answer after normalization, else 0."""

    def _compare(self, got: str, expected: str) -> float:
        return float(expected in got)


class LevenshteinScorer(_TextScorer):
    """Normalized Levenshtein similarity in [0, 1]: 1 for equal strings, 0 for nothing in common."""

    def _compare(self, got: str, expected: str) -> float:
        return Levenshtein.normalized_similarity(got, expected)
