"""Tables of production logs, written only by :mod:`promptopt.logs` (its ``LogStore``).

``prompt_log`` holds what applications logged through the SDK (one row per model call, keyed by the id the
client chose, so a batch sent twice is stored once); ``log_feedback`` the feedback on a log (every entry is
kept, the latest wins); ``log_score`` the online scores of reference-free scorers.
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
        sa.ForeignKeyConstraint(
            ["log_id"], ["prompt_log.id"], name="fk_log_feedback_log_id_prompt_log", ondelete="CASCADE"
        ),
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
        sa.ForeignKeyConstraint(
            ["log_id"], ["prompt_log.id"], name="fk_log_score_log_id_prompt_log", ondelete="CASCADE"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    log_id: str
    scorer: str
    value: float | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=TIMESTAMP)
