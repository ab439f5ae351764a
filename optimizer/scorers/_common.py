"""Pieces every built-in scorer shares: name and weight from the spec, the value compared, the reference."""

from __future__ import annotations

import json
from typing import Any

from promptopt.errors import ScorerError
from promptopt.scorers._base import ScoreInput, Scorer
from promptopt.spec import ScorerSpecBase


class SpecScorer(Scorer):
    """A scorer configured by one spec entry: ``name`` is the entry's key, ``weight`` its weight."""

    def __init__(self, spec: ScorerSpecBase) -> None:
        self.name = spec.key
        self.weight = spec.weight


def as_text(value: Any) -> str:
    """Text form of a value for comparison.

    Strings and numbers keep ``str()``; structured values use sorted JSON so that two equal dicts compare
    equal whatever their key order (``str()`` would not), and ``true`` reads as JSON rather than ``True``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def answer(row: ScoreInput) -> Any:
    """The value a row is judged on: the parsed output, or the raw text when parsing failed.

    A failed parse of a label or JSON answer then simply fails to match: a wrong answer, not an error.
    """
    return row.output if row.parsed is None else row.parsed


def require_expected(row: ScoreInput, name: str) -> Any:
    """The row's reference value; a row without one is an error on that row, never a score of 0."""
    if row.expected is None:
        raise ScorerError(
            f"scorer {name!r} compares with an expected value, but the row has none; "
            "give the row an 'expected' or use a scorer that needs no reference"
        )
    return row.expected
