"""Optimization runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON()
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("dataset_hash", sa.String(), nullable=False),
        sa.Column("space", JSON, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
    )
    op.create_index("ix_run_key", "run", ["key"])
    op.create_index("ix_run_name", "run", ["name"])


def downgrade() -> None:
    op.drop_index("ix_run_name", table_name="run")
    op.drop_index("ix_run_key", table_name="run")
    op.drop_table("run")
