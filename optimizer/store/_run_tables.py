"""The ``run`` table: one optimization run (its Optuna study lives beside it, named ``run-<id>``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from promptopt.store._tables import JSON, TIMESTAMP


class RunTable(SQLModel, table=True):
    """``key`` identifies "the same run" (spec, data, sampler, seed) so that the same command resumes it."""

    __tablename__ = "run"

    id: str = Field(primary_key=True)
    key: str = Field(index=True)
    name: str = Field(index=True)
    status: str
    spec: dict[str, Any] = Field(sa_type=JSON)
    settings: dict[str, Any] = Field(sa_type=JSON)
    dataset_hash: str
    space: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # Calls (and dollars) paid to build the space outside any eval: instruction proposals.
    space_calls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    space_usd: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(sa_type=TIMESTAMP)
    finished_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    error_message: str | None = Field(default=None, sa_type=sa.Text)
