"""Traces of code tasks: the prompt calls of each row (``row.trace``, a JSON list of spans), NULL for a
one-prompt task's row and for every row recorded before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# A frozen copy of the column type in promptopt/store/_tables.py: a migration never imports model code.
JSON = sa.JSON()


def upgrade() -> None:
    with op.batch_alter_table("row") as batch:
        batch.add_column(sa.Column("trace", JSON, nullable=True))


def downgrade() -> None:
    # In place: a recreated row table would lose nothing here, but keep every downgrade a column drop.
    with op.batch_alter_table("row", recreate="never") as batch:
        batch.drop_column("trace")
