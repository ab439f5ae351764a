"""The scorer seam: a row in, a validated score in [0, 1] out, with the scorer's own token and cost use."""

from __future__ import annotations

import abc
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promptopt.tasks import Span


class ScoreInput(BaseModel):
    """What a scorer sees of one row. ``output`` is the raw text, ``parsed`` the value after output parsing
    (the label, the JSON value, or the text), ``None`` when parsing failed. ``trace``: a code task's prompt
    calls, in order (empty for a one-prompt task)."""

    model_config = ConfigDict(frozen=True)
    input: dict[str, Any]
    output: str
    parsed: Any = None
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    trace: tuple[Span, ...] = ()


class ScoreResult(BaseModel):
    """A score that checks its own range. Tokens and cost are the scorer's (a judge's), never the task's."""

    model_config = ConfigDict(frozen=True)
    value: float
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    detail: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _in_unit_interval(cls, value: Any) -> float:
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, int | float) or isinstance(value, float) and math.isnan(value):
            raise ValueError(f"a score must be a number in [0, 1], got {value!r}")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"a score must lie in [0, 1], got {value!r}")
        return float(value)


class Scorer(abc.ABC):
    """Contract:

    * ``score`` returns a :class:`ScoreResult` (its value is validated to lie in [0, 1]) or raises
      :class:`promptopt.errors.ScorerError`; the engine records that as an error on the row, never as 0.
    * ``needs_expected`` is False for scorers that can run on production logs without a reference.
    * Scorers are safe to call concurrently; expensive set-up happens once in ``__init__`` or lazily.
    """

    name: str
    weight: float
    needs_expected: bool = True

    @abc.abstractmethod
    async def score(self, row: ScoreInput) -> ScoreResult:
        """Score one row."""

    async def aclose(self) -> None:
        """Release resources (worker processes, connections); default does nothing."""
