"""Production logs, their feedback and online scores; re-optimization schedules and their run history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the column types in promptopt/store/_tables.py: a migration never imports model code.
JSON = sa.JSON()
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "prompt_log",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("prompt", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("input", JSON, nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_prompt_log_prompt_created_at", "prompt_log", ["prompt", "created_at"])
    op.create_table(
        "log_feedback",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("log_id", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("corrected", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["log_id"], ["prompt_log.id"], name="fk_log_feedback_log_id_prompt_log", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_log_feedback_log_id", "log_feedback", ["log_id"])
    op.create_index("ix_log_feedback_received_at", "log_feedback", ["received_at"])
    op.create_table(
        "log_score",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("log_id", sa.String(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("log_id", "scorer", name="uq_log_score_log_id_scorer"),
        sa.ForeignKeyConstraint(
            ["log_id"], ["prompt_log.id"], name="fk_log_score_log_id_prompt_log", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "schedule",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("prompt", sa.String(), nullable=False),
        sa.Column("spec_path", sa.Text(), nullable=False),
        sa.Column("every_s", sa.Float(), nullable=False),
        sa.Column("min_new_feedback", sa.Integer(), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_run_at", TIMESTAMP, nullable=True),
        sa.Column("last_status", sa.String(), nullable=True),
        sa.Column("last_run_id", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("name", name="uq_schedule_name"),
    )
    op.create_index("ix_schedule_prompt", "schedule", ["prompt"])
    op.create_table(
        "schedule_run",
        sa.Column("id", BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("schedule_id", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("dataset_file", sa.Text(), nullable=True),
        sa.Column("dataset_hash", sa.String(), nullable=True),
        sa.Column("cases", sa.Integer(), nullable=True),
        sa.Column("new_feedback", sa.Integer(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=True),
        sa.Column("promotion", JSON, nullable=True),
        sa.Column("drift", JSON, nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedule.id"], name="fk_schedule_run_schedule_id_schedule", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_schedule_run_schedule_id", "schedule_run", ["schedule_id"])


def downgrade() -> None:
    op.drop_index("ix_schedule_run_schedule_id", table_name="schedule_run")
    op.drop_table("schedule_run")
    op.drop_index("ix_schedule_prompt", table_name="schedule")
    op.drop_table("schedule")
    op.drop_table("log_score")
    op.drop_index("ix_log_feedback_received_at", table_name="log_feedback")
    op.drop_index("ix_log_feedback_log_id", table_name="log_feedback")
    op.drop_table("log_feedback")
    op.drop_index("ix_prompt_log_prompt_created_at", table_name="prompt_log")
    op.drop_table("prompt_log")
