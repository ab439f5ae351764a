"""What every command shares: error handling (bad input -> exit 2), store and cache options, output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from promptopt.errors import BudgetExceeded, EvalFailed, InputError, NotFound, OptimizeError
from promptopt.secrets import scrub_secrets

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False)
# Wide tables when the output is a file or a CI log (rich would otherwise wrap them at 80 columns).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

StoreOpt = typer.Option(
    None,
    "--store",
    help="Store URL (sqlite:///path.db or postgresql://...); default $OPTIMIZE_STORE or ./.optimize/optimize.db",
)
CacheOpt = typer.Option(
    None, "--cache", help="Response cache: a folder or redis://...; default $OPTIMIZE_CACHE or ./.optimize/cache"
)
NoCacheOpt = typer.Option(False, "--no-cache", help="Call the model for every row; store nothing in the cache.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of tables.")


def fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {scrub_secrets(message)}", soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Map our exceptions to exit codes: 2 for bad input, 1 for a failed eval or missing record."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            fail(str(exc), 2)
        except (NotFound, EvalFailed, BudgetExceeded) as exc:
            fail(str(exc), 1)
        except OptimizeError as exc:
            fail(f"{type(exc).__name__}: {exc}", 1)

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def open_store(url: str | None) -> Any:
    from promptopt.store import get_store

    return get_store(url)
