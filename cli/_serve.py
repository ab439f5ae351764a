"""`optimize serve`: the registry's HTTP API (and the routers mounted beside it) under uvicorn."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from promptopt.cli._common import StoreOpt, console, handle_errors, open_store
from promptopt.errors import InputError

TOKEN_ENV = "OPTIMIZE_SERVER_TOKEN"  # promptopt.server.TOKEN_ENV, without importing FastAPI to parse options
RouterFactory = Callable[[Any], Any]  # store -> fastapi.APIRouter


def read_token(token_file: Path | None) -> str | None:
    """The bearer token from ``token_file`` (first line), else ``$OPTIMIZE_SERVER_TOKEN``, else ``None``."""
    if token_file is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        lines = token_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(str(token_file), "", f"cannot read the token file: {exc.strerror}") from None
    if not lines or not lines[0].strip():
        raise InputError(str(token_file), "", "the token file is empty; put the token on its first line")
    return lines[0].strip()


def register(app: typer.Typer, *, routers: Sequence[RouterFactory] = ()) -> None:
    """Add ``optimize serve`` to ``app``; ``routers`` build more routers (reports, logs) from the store."""

    @app.command()
    @handle_errors
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8080, min=0, max=65535, help="Port to listen on."),
        store: str | None = StoreOpt,
        token_file: Path | None = typer.Option(
            None, "--token-file", help=f"File whose first line is the bearer token; default ${TOKEN_ENV}."
        ),
        protect_reads: bool = typer.Option(False, "--protect-reads", help="Require the token on reads too."),
        read_only: bool = typer.Option(False, "--read-only", help="Serve reads only (no token needed)."),
        log_level: str = typer.Option("info", help="uvicorn log level."),
    ) -> None:
        """Serve the prompt registry over HTTP: reads for applications, label moves and invoke with a token."""
        token = read_token(token_file)
        if token is None and (not read_only or protect_reads):
            needs = "--protect-reads needs" if read_only else "label moves and invoke need"
            raise InputError(
                "optimize serve",
                "--token-file",
                f"{needs} a bearer token (set {TOKEN_ENV} or pass "
                f"--token-file FILE{'' if read_only else '; or serve reads only with --read-only'})",
            )
        import uvicorn

        from promptopt.server import create_app

        the_store = open_store(store)
        api = create_app(
            the_store,
            token=token,
            protect_reads=protect_reads,
            read_only=read_only,
            routers=[make(the_store) for make in routers],
        )
        console.print(
            f"serving {the_store.url} on http://{host}:{port} (OpenAPI at /openapi.json"
            f"{', reads only' if read_only else ''}{', reads need the token' if protect_reads else ''})",
            markup=False,
        )
        uvicorn.run(api, host=host, port=port, log_level=log_level)
