"""Values of production logging: what a client sends (validated field by field), and what the store returns."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promptopt.names import Label, LogId, PromptName, Version

MAX_BATCH = 10_000
MAX_TEXT = 1_000_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _aware(value: datetime | None) -> datetime | None:
    """Timestamps without a zone are read as UTC (what the SDK sends)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LogIn(_Frozen):
    """One logged model call, as a client sends it (``POST /v1/logs:bulk``).

    ``id`` makes a resend idempotent: a log whose id is already stored is not stored again. ``input`` is the
    template variables (an object) or any JSON value; ``metadata`` is free-form.
    """

    id: LogId | None = Field(default=None, description="Client-chosen id (default: a new one).")
    prompt: PromptName = Field(description="Prompt name in the registry.")
    version: Version | None = Field(default=None, description="Registry version that produced it.")
    label: Label | None = Field(default=None, description="Label the version was looked up by.")
    input: Any = Field(description="The template variables (an object), or any JSON value.")
    output: str | None = Field(default=None, max_length=MAX_TEXT)
    model: str | None = Field(default=None, max_length=200)
    latency_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = Field(default=None, description="When the call was made (default: when received).")

    @field_validator("input")
    @classmethod
    def _present(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must be the call's input (an object of template variables, or any JSON value)")
        return value

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class FeedbackIn(_Frozen):
    """Feedback on one log (``POST /v1/feedback:bulk``): a score, a label, a corrected output, or several."""

    id: LogId | None = Field(default=None, description="Client-chosen id (default: a new one).")
    log_id: LogId
    score: float | None = Field(default=None, allow_inf_nan=False)
    label: str | None = Field(default=None, min_length=1, max_length=200)
    corrected: str | None = Field(default=None, max_length=MAX_TEXT)
    created_at: datetime | None = None

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackIn:
        if self.score is None and self.label is None and self.corrected is None:
            raise ValueError("give at least one of score, label or corrected")
        return self


class LogBatch(_Frozen):
    logs: list[LogIn] = Field(min_length=1, max_length=MAX_BATCH)


class FeedbackBatch(_Frozen):
    feedback: list[FeedbackIn] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(_Frozen):
    """How many entries of a batch were stored, and how many were already there (a resend)."""

    accepted: int = Field(ge=0)
    duplicates: int = Field(ge=0)


class Feedback(_Frozen):
    """The feedback that counts for a log: its latest entry."""

    id: str
    score: float | None = None
    label: str | None = None
    corrected: str | None = None
    created_at: datetime

    @property
    def expected(self) -> Any:
        """The reference it gives for an eval: the corrected output, else the label, else ``None``."""
        return self.corrected if self.corrected is not None else self.label


class LogEntry(_Frozen):
    """One stored log with its latest feedback."""

    id: str
    prompt: str
    version: int | None
    label: str | None
    input: Any
    output: str | None
    model: str | None
    latency_s: float | None
    tokens: int | None
    cost_usd: float | None
    metadata: dict[str, Any]
    created_at: datetime
    feedback: Feedback | None = None


class LogQuery(_Frozen):
    """Which logs: one prompt (and version or label), a time window, only those with feedback.

    ``since`` is inclusive and ``until`` exclusive, on the time the call was made; logs come oldest first.
    """

    prompt: PromptName | None = None
    version: int | None = Field(default=None, ge=1)
    label: Label | None = None
    since: datetime | None = None
    until: datetime | None = None
    with_feedback: bool = False
    newest_first: bool = Field(default=False, description="Order (and ``limit``) from the newest log instead.")
    limit: int | None = Field(default=None, ge=1)

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class VersionStats(_Frozen):
    """Production numbers of one version of a prompt (``version`` ``None``: logs that named no version)."""

    version: int | None
    logs: int = Field(ge=0)
    first_at: datetime
    last_at: datetime
    scored_logs: int = Field(ge=0, description="Logs with at least one online score.")
    online_score: float | None = Field(default=None, description="Mean of every online score value of the version.")
    online_by_scorer: dict[str, float | None] = Field(default_factory=dict)
    scorer_errors: int = Field(default=0, ge=0)
    feedback_logs: int = Field(ge=0)
    feedback_score: float | None = Field(default=None, description="Mean latest feedback score, where one was given.")

    @property
    def feedback_rate(self) -> float:
        return self.feedback_logs / self.logs if self.logs else 0.0


class ScoreReport(_Frozen):
    """What one pass of online scoring did."""

    prompt: str
    considered: int = Field(ge=0, description="Logs not yet scored by every scorer.")
    sampled: int = Field(ge=0, description="Of those, the logs in the seeded sample.")
    recorded: int = Field(ge=0, description="Score rows written (one per log and scorer).")
    errors: int = Field(ge=0, description="Rows whose scorer failed (recorded as errors, not as scores).")
    means: dict[str, float | None] = Field(default_factory=dict)

    @field_validator("means")
    @classmethod
    def _finite(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        for name, mean in value.items():
            if mean is not None and not (math.isfinite(mean) and 0.0 <= mean <= 1.0):
                raise ValueError(f"mean of {name} must lie in [0, 1], got {mean}")
        return value


class ExportResult(_Frozen):
    """A dataset written from logs: where, its content hash, how many records and how many have a reference."""

    path: str
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    records: int = Field(ge=0)
    with_expected: int = Field(ge=0)
