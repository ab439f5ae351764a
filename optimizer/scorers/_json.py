"""JSON scorers: is the output valid JSON (matching an optional schema), and which listed fields are right."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from promptopt.errors import ScorerError
from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer, require_expected
from promptopt.spec import JsonFieldSpec, JsonValidSpec

# The whole output wrapped in one Markdown code fence still counts as JSON: models add fences unasked, and
# the fence is formatting, not content. JSON embedded in prose does not count.
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)
_MISSING = object()


def load_json_text(text: str) -> Any:
    """Parse ``text`` as JSON, allowing surrounding white space and one enclosing code fence.

    Raises:
        ValueError: the text is not JSON.
    """
    text = text.strip()
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def lookup(value: Any, path: str) -> Any:
    """Follow a dotted path (``a.b.0.c``; digits index lists); ``_MISSING`` when any step is absent."""
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


class JsonValidScorer(SpecScorer):
    """1 when the output is JSON and matches the optional JSON Schema, else 0 (the reason in ``detail``)."""

    needs_expected = False

    def __init__(self, spec: JsonValidSpec) -> None:
        super().__init__(spec)
        self._validator = None
        if spec.json_schema is not None:
            cls = jsonschema.validators.validator_for(spec.json_schema)
            cls.check_schema(spec.json_schema)  # a broken schema is the user's error, found at build time
            self._validator = cls(spec.json_schema)

    async def score(self, row: ScoreInput) -> ScoreResult:
        try:
            value = load_json_text(row.output)
        except ValueError as exc:
            return ScoreResult(value=0.0, detail=f"not JSON: {exc}")
        if self._validator is not None:
            error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
            if error is not None:
                return ScoreResult(value=0.0, detail=f"schema mismatch: {error.message}")
        return ScoreResult(value=1.0)


class JsonFieldScorer(SpecScorer):
    """Fraction of the listed dotted fields whose values are equal in the output and the expected JSON.

    The expected value may be a dict or a JSON string. Output that is not JSON scores 0; a listed field that
    the expected value lacks is an error on the row (the reference cannot say what is right).
    """

    def __init__(self, spec: JsonFieldSpec) -> None:
        super().__init__(spec)
        if not spec.fields:
            raise ValueError(f"scorer {spec.key!r}: list at least one field to compare")
        self._fields = spec.fields

    async def score(self, row: ScoreInput) -> ScoreResult:
        expected = self._expected(row)
        got = self._output(row)
        if got is _MISSING:
            return ScoreResult(value=0.0, detail="output is not JSON")
        wrong = [f for f in self._fields if lookup(got, f) != lookup(expected, f)]
        detail = f"wrong: {', '.join(wrong)}" if wrong else None
        return ScoreResult(value=1 - len(wrong) / len(self._fields), detail=detail)

    def _expected(self, row: ScoreInput) -> Any:
        expected = require_expected(row, self.name)
        if isinstance(expected, str):
            try:
                expected = load_json_text(expected)
            except ValueError as exc:
                raise ScorerError(f"scorer {self.name!r}: the expected value is not JSON: {exc}") from exc
        absent = [f for f in self._fields if lookup(expected, f) is _MISSING]
        if absent:
            raise ScorerError(f"scorer {self.name!r}: the expected value has no field {', '.join(absent)}")
        return expected

    @staticmethod
    def _output(row: ScoreInput) -> Any:
        # The engine already parsed JSON tasks (tolerating prose around the JSON); use that when it did.
        if isinstance(row.parsed, dict | list):
            return row.parsed
        try:
            return load_json_text(row.output)
        except ValueError:
            return _MISSING
