"""The `optimize` command: one typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from promptopt.cli import _eval, _registry, _run, _serve

app = typer.Typer(name="optimize", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Automatic prompt optimization: evals, search, a versioned prompt registry.")
_eval.register(app)
_run.register(app)
_registry.register(app)
_serve.register(app)


def main() -> None:
    app()
