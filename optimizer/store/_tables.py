"""Tables of evals: one ``experiment`` per eval of a config on a split, one ``row`` per case and repeat.

Every table of the store lives on the one ``SQLModel.metadata``; a schema change is a new hand-written
migration in ``migrations/versions/`` (see :mod:`promptopt.store._migrate`), never ``create_all``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Plain JSON on both backends (not JSONB): values come back exactly as written, object key order included.
JSON = sa.JSON()
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


class ExperimentTable(SQLModel, table=True):
    """One eval. ``key`` identifies "the same eval" for resuming; it is not unique, because a finished
    eval run again under the same key is a new experiment."""

    __tablename__ = "experiment"

    id: str = Field(primary_key=True)
    key: str = Field(index=True)
    name: str = Field(index=True)
    status: str
    config: dict[str, Any] = Field(sa_type=JSON)
    config_hash: str
    model: str
    split: str
    dataset_hash: str
    run_id: str | None = Field(default=None, index=True)
    trial_number: int | None = None
    role: str = Field(default="eval", max_length=16, sa_column_kwargs={"server_default": "eval"})
    created_at: datetime = Field(sa_type=TIMESTAMP)
    finished_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    summary: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    error_message: str | None = Field(default=None, sa_type=sa.Text)


class RowTable(SQLModel, table=True):
    """One case and repeat of an experiment; the columns mirror :class:`promptopt.engine.RowResult`."""

    __tablename__ = "row"
    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "case_id", "repeat", name="uq_row_experiment_case_repeat"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiment.id"], name="fk_row_experiment_id_experiment", ondelete="CASCADE"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    experiment_id: str = Field(index=True)
    case_id: str
    repeat: int
    input: dict[str, Any] = Field(sa_type=JSON)
    expected: Any = Field(default=None, sa_type=JSON, nullable=True)
    output: str | None = Field(default=None, sa_type=sa.Text)
    parsed: Any = Field(default=None, sa_type=JSON, nullable=True)
    parse_error: str | None = Field(default=None, sa_type=sa.Text)
    scores: dict[str, float] = Field(sa_type=JSON)
    objective: float | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    latency_s: float
    task_prompt_tokens: int
    task_completion_tokens: int
    scorer_prompt_tokens: int
    scorer_completion_tokens: int
    task_cost_usd: float
    scorer_cost_usd: float
    cache_hit: bool
    call_cost_usd: float | None = None
    call_latency_s: float | None = None
    scorer_calls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    trace: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON, nullable=True)
