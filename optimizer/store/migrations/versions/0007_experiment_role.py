"""Experiment roles: why an experiment exists (``eval``, ``prepass``, ``trial``, ``verdict``, ``incumbent``),
in its own column instead of trial numbers with a meaning.

Before this revision a run's pre-pass was recorded as trial -1, the test-split eval of trial n as trial
n + 100000, and the promotion gate's evals as 200000 + i. Those rows get their role, and trial numbers
that name a trial (``trial`` and ``verdict``) or none (``prepass``, ``incumbent``, ``eval``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

VERDICT_OFFSET, INCUMBENT_OFFSET = 100_000, 200_000  # the old encoding, read here and nowhere else


def upgrade() -> None:
    with op.batch_alter_table("experiment") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="eval"))
    experiment = sa.table(
        "experiment",
        sa.column("role", sa.String),
        sa.column("run_id", sa.String),
        sa.column("trial_number", sa.Integer),
    )
    trial, run, role = experiment.c.trial_number, experiment.c.run_id, experiment.c.role
    in_run = run.is_not(None) & (role == "eval")  # each row is given its role once
    op.execute(experiment.update().where(in_run, trial == -1).values(role="prepass", trial_number=None))
    op.execute(experiment.update().where(in_run, trial >= INCUMBENT_OFFSET).values(role="incumbent", trial_number=None))
    op.execute(
        experiment.update()
        .where(in_run, trial >= VERDICT_OFFSET, trial < INCUMBENT_OFFSET)
        .values(role="verdict", trial_number=trial - VERDICT_OFFSET)
    )
    op.execute(experiment.update().where(in_run, trial >= 0, trial < VERDICT_OFFSET).values(role="trial"))


def downgrade() -> None:
    experiment = sa.table("experiment", sa.column("role", sa.String), sa.column("trial_number", sa.Integer))
    trial, role = experiment.c.trial_number, experiment.c.role
    op.execute(experiment.update().where(role == "prepass").values(trial_number=-1))
    op.execute(experiment.update().where(role == "verdict").values(trial_number=trial + VERDICT_OFFSET))
    op.execute(experiment.update().where(role == "incumbent").values(trial_number=INCUMBENT_OFFSET))
    # In place (SQLite >= 3.35 drops a column): a batch that copies the table drops the old one, and with
    # foreign keys on, row's ON DELETE CASCADE would delete every recorded row with it.
    with op.batch_alter_table("experiment", recreate="never") as batch:
        batch.drop_column("role")
