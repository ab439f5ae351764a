"""Tables of the prompt registry, written only by :mod:`promptopt.registry` (its ``Registry``): immutable
numbered versions, labels that point at one version each, the audit log of every label change (and of every
gated promotion that was refused), and the LoRA adapters of fine-tuned versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from promptopt.store._tables import BIGINT_ID, JSON, TIMESTAMP


class PromptVersionTable(SQLModel, table=True):
    """One registered configuration of a prompt. ``version`` runs 1, 2, 3... per ``name`` without gaps; the
    same content (``config_hash``) is registered at most once per name. Rows are never updated."""

    __tablename__ = "prompt_version"
    __table_args__ = (
        sa.UniqueConstraint("name", "version", name="uq_prompt_version_name_version"),
        sa.UniqueConstraint("name", "config_hash", name="uq_prompt_version_name_config_hash"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    name: str
    version: int
    config: dict[str, Any] = Field(sa_type=JSON)
    config_hash: str
    model: str
    run_id: str | None = Field(default=None, index=True)
    trial: int | None = None
    spec_hash: str | None = None
    dataset_hash: str | None = None
    validation_score: float | None = None
    test_score: float | None = None
    fine_tune: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(sa_type=TIMESTAMP)
    created_by: str


class PromptLabelTable(SQLModel, table=True):
    """Where a label of a prompt points now; its past is in ``prompt_label_event``."""

    __tablename__ = "prompt_label"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["name", "version"], ["prompt_version.name", "prompt_version.version"], name="fk_prompt_label_version"
        ),
    )

    name: str = Field(primary_key=True)
    label: str = Field(primary_key=True)
    version: int
    updated_at: datetime = Field(sa_type=TIMESTAMP)
    updated_by: str


class PromptLabelEventTable(SQLModel, table=True):
    """One entry of the audit log: a label set, rolled back or promoted by the gate (``from_version`` ->
    ``to_version``), or a promotion the gate refused (the label stays; ``candidate_version`` was refused)."""

    __tablename__ = "prompt_label_event"

    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_ID)
    name: str = Field(index=True)
    label: str
    kind: str
    from_version: int | None = None
    to_version: int | None = None
    candidate_version: int | None = None
    who: str
    why: str | None = Field(default=None, sa_type=sa.Text)
    at: datetime = Field(sa_type=TIMESTAMP)
    evidence: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class AdapterTable(SQLModel, table=True):
    """The LoRA adapter file of a fine-tuned model (``local/<base>+ft-<key>``), by its key: kept beside the
    versions that use it, so that every machine reading the store can serve them. Rows are never updated."""

    __tablename__ = "adapter"

    key: str = Field(primary_key=True)
    sha256: str
    size: int
    content: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(sa_type=TIMESTAMP)
