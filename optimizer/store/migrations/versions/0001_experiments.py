"""Experiments (one eval of a config on a split) and their rows (one per case and repeat).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types in promptopt/store/_tables.py: a migration never imports model code.
JSON = sa.JSON()
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("config_hash", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("dataset_hash", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("trial_number", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
    )
    op.create_index("ix_experiment_key", "experiment", ["key"])
    op.create_index("ix_experiment_name", "experiment", ["name"])
    op.create_index("ix_experiment_run_id", "experiment", ["run_id"])
    op.create_table(
        "row",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("input", JSON, nullable=False),
        sa.Column("expected", JSON, nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("parsed", JSON, nullable=True),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("objective", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("task_prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("task_completion_tokens", sa.Integer(), nullable=False),
        sa.Column("scorer_prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("scorer_completion_tokens", sa.Integer(), nullable=False),
        sa.Column("task_cost_usd", sa.Float(), nullable=False),
        sa.Column("scorer_cost_usd", sa.Float(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("experiment_id", "case_id", "repeat", name="uq_row_experiment_case_repeat"),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiment.id"], name="fk_row_experiment_id_experiment", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_row_experiment_id", "row", ["experiment_id"])


def downgrade() -> None:
    op.drop_table("row")
    op.drop_table("experiment")
