"""Tables of scheduled re-optimization, written only by :mod:`promptopt.schedules` (its ``Schedules``).

``schedule`` holds the re-optimization jobs with their lease, and ``schedule_run`` the history of their runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from promptopt.store._tables import BIGINT_ID, JSON, TIMESTAMP


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
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedule.id"], name="fk_schedule_run_schedule_id_schedule", ondelete="CASCADE"
        ),
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
