"""Calls a run paid outside task calls: judge calls per row (``row.scorer_calls``) and the calls that built
the run's search space outside any eval, instruction proposals (``run.space_calls``, ``run.space_usd``).
Existing rows and runs read 0: what was recorded before did not count them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("row") as batch:
        batch.add_column(sa.Column("scorer_calls", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("space_calls", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("space_usd", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("space_usd")
        batch.drop_column("space_calls")
    with op.batch_alter_table("row") as batch:
        batch.drop_column("scorer_calls")
