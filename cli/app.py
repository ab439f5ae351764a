"""The `optimize` command: one typer app; each command group lives in its own module."""

from __future__ import annotations

from typing import Any

import typer

from promptopt.cli import _eval, _logs, _registry, _report, _run, _schedule, _serve

app = typer.Typer(
    name="optimize",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Automatic prompt optimization: evals, search, a versioned prompt registry.",
)


def _reports_router(store: Any) -> Any:
    from promptopt.reports import router

    return router(lambda: store)


def _logs_router(store: Any) -> Any:
    from promptopt.logs import router

    return router(lambda: store)


_eval.register(app)
_run.register(app)
_registry.register(app)
_report.register(app)
_logs.register(app)
_schedule.register(app)
_serve.register(app, routers=[_reports_router, _logs_router])


def main() -> None:
    app()
