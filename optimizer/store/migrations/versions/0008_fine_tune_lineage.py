"""Fine-tuned versions: what a version's fine-tuned model was trained from (``prompt_version.fine_tune``, NULL
for a prompt-only version and for every version registered before), and the LoRA adapter files of those
models (``adapter``), so that they travel with the store.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen copies of the column types in promptopt/store/_tables.py: a migration never imports model code.
JSON = sa.JSON()
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("prompt_version") as batch:
        batch.add_column(sa.Column("fine_tune", JSON, nullable=True))
    op.create_table(
        "adapter",
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("adapter")
    # In place (SQLite >= 3.35 drops a column itself): a copied and recreated prompt_version would be dropped
    # while prompt_label's foreign key still points at its rows, which SQLite refuses.
    with op.batch_alter_table("prompt_version", recreate="never") as batch:
        batch.drop_column("fine_tune")
