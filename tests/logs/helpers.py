"""Logs written straight into a store, with known times, versions, labels and feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from promptopt.cli import _logs, _schedule
from promptopt.logs import FeedbackIn, LogIn, LogStore
from promptopt.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seed_logs(store: Store) -> None:
    """``reviews``: 10 logs an hour apart (v1 for the first 6, v2 after; label production but for two); feedback
    on the even ones (a label; log-4 also a later corrected output). ``other``: 2 logs without feedback."""
    logs = LogStore(store)
    logs.add_logs(
        [
            LogIn(
                id=f"log-{i}",
                prompt="reviews",
                version=1 if i < 6 else 2,
                label="canary" if i in (3, 7) else "production",
                input={"text": f"review {i}"},
                output="positive" if i % 3 else "negative",
                model="fake/m",
                latency_s=0.1 * i,
                metadata={"i": i},
                created_at=T0 + timedelta(hours=i),
            )
            for i in range(10)
        ]
    )
    logs.add_logs(
        [
            LogIn(id=f"other-{i}", prompt="other", input="plain text", output="x", created_at=T0 + timedelta(hours=i))
            for i in range(2)
        ]
    )
    logs.add_feedback(
        [
            FeedbackIn(
                id=f"fb-{i}",
                log_id=f"log-{i}",
                label="negative" if i % 4 else "positive",
                score=1.0 if i % 4 == 0 else 0.0,
                created_at=T0 + timedelta(hours=i, minutes=5),
            )
            for i in range(0, 10, 2)
        ]
    )
    logs.add_feedback(
        [FeedbackIn(id="fb-4-later", log_id="log-4", corrected="neutral", created_at=T0 + timedelta(hours=6))]
    )


def cli_app() -> typer.Typer:
    """The commands of this change on an app of their own (cli/app.py wires them into ``optimize``)."""
    app = typer.Typer(no_args_is_help=True)
    _logs.register(app)
    _schedule.register(app)
    return app
