"""Build scorers from spec entries: the one place that maps a scorer type to its class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jsonschema

from promptopt.errors import InputError
from promptopt.models import ModelBackend
from promptopt.scorers._agent import StepsScorer, ToolCallScorer
from promptopt.scorers._base import Scorer
from promptopt.scorers._custom import CustomScorer
from promptopt.scorers._embedding import EmbeddingScorer
from promptopt.scorers._json import JsonFieldScorer, JsonValidScorer
from promptopt.scorers._judge import LLMJudgeScorer
from promptopt.scorers._numeric import NumericScorer
from promptopt.scorers._regex import RegexScorer
from promptopt.scorers._text import ContainsScorer, ExactMatchScorer, LevenshteinScorer
from promptopt.spec import CustomSpec, EmbeddingSpec, LLMJudgeSpec, ScorerSpec

_SIMPLE = {
    "exact_match": ExactMatchScorer,
    "contains": ContainsScorer,
    "levenshtein": LevenshteinScorer,
    "regex": RegexScorer,
    "json_valid": JsonValidScorer,
    "json_field": JsonFieldScorer,
    "numeric": NumericScorer,
    "tool_call": ToolCallScorer,
    "steps": StepsScorer,
}


def build_scorer(spec: ScorerSpec, *, base_dir: Path, backend: ModelBackend | None) -> Scorer:
    """Build one scorer; see :func:`build_scorers`."""
    if isinstance(spec, LLMJudgeSpec):
        if backend is None:
            raise ValueError(f"scorer {spec.key!r} is an llm_judge and needs a model backend; pass backend=")
        return LLMJudgeScorer(spec, backend=backend)
    if isinstance(spec, CustomSpec):
        return CustomScorer(spec, base_dir=base_dir)
    if isinstance(spec, EmbeddingSpec):
        return EmbeddingScorer(spec)
    scorer: Scorer = _SIMPLE[spec.type](spec)
    return scorer


def build_scorers(
    specs: Sequence[ScorerSpec], *, base_dir: Path, backend: ModelBackend | None, source: str = "spec"
) -> list[Scorer]:
    """Build the scorers of a spec, in order.

    Args:
        specs: Validated scorer entries (``Spec.scorers``).
        base_dir: The spec's folder; custom scorers import their module from there.
        backend: Model backend for ``llm_judge`` scorers (None is fine when there are none).
        source: File name used in error messages.

    Returns:
        One scorer per entry, with ``name`` = the entry's key and ``weight`` its weight. Call ``aclose()`` on
        each when done: custom scorers hold worker processes.

    Raises:
        InputError: an entry cannot be built (a judge prompt that does not parse, an invalid JSON Schema).
        ValueError: an ``llm_judge`` entry and no backend.

    Example:
        >>> from pydantic import TypeAdapter
        >>> spec = TypeAdapter(ScorerSpec).validate_python({"type": "exact_match"})
        >>> [s.name for s in build_scorers([spec], base_dir=Path("."), backend=None)]
        ['exact_match']
    """
    if backend is None and any(isinstance(spec, LLMJudgeSpec) for spec in specs):
        raise ValueError("an llm_judge scorer needs a model backend; pass backend= to build_scorers")
    scorers: list[Scorer] = []
    for index, spec in enumerate(specs):
        try:
            scorers.append(build_scorer(spec, base_dir=base_dir, backend=backend))
        except (ValueError, jsonschema.SchemaError) as exc:
            # Nothing to clean up: custom scorers start their workers on first use, not here.
            message = getattr(exc, "message", None) or str(exc)
            raise InputError(source, f"scorers[{index}]", message) from exc
    return scorers
