"""Prompt registry: versions, labels and the audit log of label changes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the column types in promptopt/store/_tables.py: a migration never imports model code.
JSON = sa.JSON()
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "prompt_version",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("config_hash", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("trial", sa.Integer(), nullable=True),
        sa.Column("spec_hash", sa.String(), nullable=True),
        sa.Column("dataset_hash", sa.String(), nullable=True),
        sa.Column("validation_score", sa.Float(), nullable=True),
        sa.Column("test_score", sa.Float(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_prompt_version_name_version"),
        sa.UniqueConstraint("name", "config_hash", name="uq_prompt_version_name_config_hash"),
    )
    op.create_index("ix_prompt_version_run_id", "prompt_version", ["run_id"])
    op.create_table(
        "prompt_label",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("label", sa.String(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["prompt_version.name", "prompt_version.version"], name="fk_prompt_label_version"
        ),
    )
    op.create_table(
        "prompt_label_event",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("why", sa.Text(), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("evidence", JSON, nullable=True),
    )
    op.create_index("ix_prompt_label_event_name", "prompt_label_event", ["name"])


def downgrade() -> None:
    op.drop_index("ix_prompt_label_event_name", table_name="prompt_label_event")
    op.drop_table("prompt_label_event")
    op.drop_table("prompt_label")
    op.drop_index("ix_prompt_version_run_id", table_name="prompt_version")
    op.drop_table("prompt_version")
