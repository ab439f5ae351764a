"""Values the store returns, and their conversion from and to table rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from promptopt.engine import EvalSummary, ExperimentRole, RowResult
from promptopt.store._tables import ExperimentTable, RowTable

ExperimentStatus = Literal["running", "finished", "failed"]


class ExperimentRecord(BaseModel):
    """One eval as stored: ``role`` says why it exists, ``trial_number`` which trial it evaluated (for the
    roles trial and verdict). A running experiment has no ``finished_at`` and no ``summary``; a finished or
    failed one has both, and never changes again."""

    model_config = ConfigDict(frozen=True)
    id: str
    key: str
    name: str
    status: ExperimentStatus
    config: dict[str, Any]
    config_hash: str
    model: str
    split: str
    dataset_hash: str
    run_id: str | None = None
    trial_number: int | None = None
    role: ExperimentRole = ExperimentRole.EVAL
    created_at: datetime
    finished_at: datetime | None = None
    summary: EvalSummary | None = None
    error_message: str | None = None

    @model_validator(mode="after")
    def _finished_has_summary(self) -> ExperimentRecord:
        done = self.status != "running"
        if done != (self.finished_at is not None) or done != (self.summary is not None):
            raise ValueError(f"a {self.status} experiment must {'' if done else 'not '}have finished_at and summary")
        return self


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite returns naive timestamps, in the UTC they were stored)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def experiment_record(table: ExperimentTable) -> ExperimentRecord:
    finished_at = None if table.finished_at is None else utc(table.finished_at)
    return ExperimentRecord(
        id=table.id,
        key=table.key,
        name=table.name,
        status=table.status,
        config=table.config,
        config_hash=table.config_hash,
        model=table.model,
        split=table.split,
        dataset_hash=table.dataset_hash,
        run_id=table.run_id,
        trial_number=table.trial_number,
        role=ExperimentRole(table.role),
        created_at=utc(table.created_at),
        finished_at=finished_at,
        summary=None if table.summary is None else EvalSummary.model_validate(table.summary),
        error_message=table.error_message,
    )


def row_result(table: RowTable) -> RowResult:
    return RowResult.model_validate({name: getattr(table, name) for name in RowResult.model_fields})


def row_values(experiment_id: str, row: RowResult) -> dict[str, Any]:
    """Column values of ``row``, JSON-compatible (tuples become lists, as they will on the way back).

    A NaN objective is stored as no objective: SQLite has no NaN (it would store NULL anyway), and both
    backends must read back the same row.
    """
    values = row.model_dump(mode="json")
    if values["objective"] is not None and math.isnan(values["objective"]):
        values["objective"] = None
    return {"experiment_id": experiment_id, **values}
