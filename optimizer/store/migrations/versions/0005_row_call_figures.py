"""Rows keep what their task call costs and takes when it really runs (for a cache hit: the original call's),
apart from what the eval paid (``task_cost_usd``, ``latency_s``: 0 for a hit). NULL: unknown, as on older rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("row") as batch:
        batch.add_column(sa.Column("call_cost_usd", sa.Float(), nullable=True))
        batch.add_column(sa.Column("call_latency_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("row") as batch:
        batch.drop_column("call_latency_s")
        batch.drop_column("call_cost_usd")
