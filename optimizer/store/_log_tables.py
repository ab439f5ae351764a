"""Tables of production logs and of scheduled re-optimization.

``prompt_log`` holds what applications logged through the SDK (one row per model call, keyed by the id the
client chose, so a batch sent twice is stored once); ``log_feedback`` the feedback on a log (every entry is
kept, the latest wins); ``log_score`` the online scores of reference-free scorers. ``schedule`` holds the
re-optimization jobs with their lease, and ``schedule_run`` the history of their runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from promptopt.store._tables import BIGINT_ID, JSON, TIMESTAMP


class PromptLogTable(SQLModel, table=True):
    """One logged model call of an application. Rows are never updated. ``meta`` (column ``metadata``) is
    free-form JSON whose keys may change from one release of the application to the next."""

    __tablename__ = "prompt_log"
    __table_args__ = (sa.Index("ix_prompt_log_prompt_created_at", "prompt", "created_at"),)

    id: str = Field(primary_key=True)
    prompt: str
    version: int | None = None
    label: str | None = None
    input: Any = Field(sa_type=JSON)
    output: str | None = Field(default=None, sa_type=sa.Text)
    model: str | None = None
    latency_s: float | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    meta: dict[str, Any] = Field(sa_column=sa.Column("metadata", JSON, nullable=False))
    created_at: datetime = Field(sa_type=TIMESTAMP)
    received_at: datetime = Field(sa_type=TIMESTAMP)


class LogFeedbackTable(SQLModel, table=True):
    """Feedback on one log (a score, a label, a corrected output). Several entries may exist per log: the one
    with the latest ``created_at`` wins. ``received_at`` is the store's clock (what "new feedback" means)."""

    __tablename__ = "log_feedback"
    __table_args__ = (
        sa.ForeignKeyConstraint(["log_id"], ["prompt_log.id"], name="fk_log_feedback_log_id_prompt_log",
                                ondelete="CASCADE"),
    )

    id: str = Field(primary_key=True)
    log_id: str = Field(index=True)
    score: float | None = None
    label: str | None = None
    corrected: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=TIMESTAMP)
    received_at: datetime = Field(sa_type=TIMESTAMP, index=True)


class LogScoreTable(SQLModel, table=True):
    """The online score of one log by one reference-free scorer; ``value`` is ``None`` when the scorer
    failed (``error`` says why), never a low score."""

    __tablename__ = "log_score"
    __table_args__ = (
        sa.UniqueConstraint("log_id", "scorer", name="uq_log_score_log_id_scorer"),
        sa.ForeignKeyConstraint(["log_id"], ["prompt_log.id"], name="fk_log_score_log_id_prompt_log",
                                ondelete="CASCADE"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    log_id: str
    scorer: str
    value: float | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=TIMESTAMP)


class ScheduleTable(SQLModel, table=True):
    """A re-optimization job: run ``spec_path`` every ``every_s`` seconds once ``min_new_feedback`` new
    feedback entries arrived. ``lease_owner``/``lease_until`` say which scheduler runs it now; ``runs`` counts
    the runs claimed, so that a claim made on a stale read fails."""

    __tablename__ = "schedule"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_schedule_name"),)

    id: str = Field(primary_key=True)
    name: str
    prompt: str = Field(index=True)
    spec_path: str = Field(sa_type=sa.Text)
    every_s: float
    min_new_feedback: int
    settings: dict[str, Any] = Field(sa_type=JSON)
    paused: bool = False
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    runs: int = 0
    last_run_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    last_status: str | None = None
    last_run_id: str | None = None
    created_at: datetime = Field(sa_type=TIMESTAMP)


class ScheduleRunTable(SQLModel, table=True):
    """One run of a schedule, from claim to finish; a run left ``running`` by a dead scheduler is marked
    ``abandoned`` by the scheduler that takes the job over."""

    __tablename__ = "schedule_run"
    __table_args__ = (
        sa.ForeignKeyConstraint(["schedule_id"], ["schedule.id"], name="fk_schedule_run_schedule_id_schedule",
                                ondelete="CASCADE"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    schedule_id: str = Field(index=True)
    owner: str
    status: str
    started_at: datetime = Field(sa_type=TIMESTAMP)
    finished_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    run_id: str | None = None
    dataset_file: str | None = Field(default=None, sa_type=sa.Text)
    dataset_hash: str | None = None
    cases: int | None = None
    new_feedback: int | None = None
    promoted: bool | None = None
    promotion: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    drift: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    message: str | None = Field(default=None, sa_type=sa.Text)
