"""The FastAPI application factory of ``optimize serve``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from promptopt.errors import InputError
from promptopt.models import ModelBackend
from promptopt.registry import Registry
from promptopt.server._auth import TOKEN_ENV, Access
from promptopt.server._errors import install_error_handlers
from promptopt.server._prompts import VersionCache, read_router, write_router
from promptopt.store import Store


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.backend_lock = asyncio.Lock()
    yield
    if app.state.backend is not None:
        await app.state.backend.aclose()


def create_app(
    store: Store,
    *,
    token: str | None,
    protect_reads: bool = False,
    read_only: bool = False,
    routers: Sequence[APIRouter] = (),
    backend: ModelBackend | None = None,
) -> FastAPI:
    """The registry's HTTP API over ``store``.

    Reads (``GET /v1/prompts...``, ``POST .../render``) are open unless ``protect_reads``; label moves and
    ``invoke`` (a model call with the server's credentials) need ``Authorization: Bearer <token>``. Without a
    token only ``read_only=True`` is allowed, and the write routes are not mounted.

    Args:
        store: Where the registry lives.
        token: The bearer token; ``None`` only with ``read_only`` (and open reads).
        protect_reads: Require the token on reads too.
        read_only: Serve reads only.
        routers: More routers to mount (reports, logs): the extension point of ``optimize serve``. Their
            routes can depend on :func:`promptopt.server.read_access` / ``write_access`` and read the
            registry with :func:`promptopt.server.registry_of`.
        backend: Model backend of ``invoke``; default the litellm backend, created on the first call.

    Raises:
        InputError: no token for a server that takes writes or protects reads.

    Example:
        >>> app = create_app(get_store(), token=os.environ["OPTIMIZE_SERVER_TOKEN"])  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    if token is None and (not read_only or protect_reads):
        needs = "--protect-reads needs" if read_only else "label moves and invoke need"
        raise InputError(
            "optimize serve",
            "--token-file",
            f"{needs} a bearer token (set {TOKEN_ENV} or pass "
            f"--token-file FILE{'' if read_only else '; or serve reads only with --read-only'})",
        )
    app = FastAPI(
        title="promptopt prompt registry",
        version="1",
        lifespan=_lifespan,
        description="Versioned prompts with labels; reads for applications, label moves for operators.",
    )
    app.state.registry = Registry(store)
    app.state.versions = VersionCache(app.state.registry)
    app.state.access = Access(token, protect_reads)
    app.state.backend = backend
    app.state.backend_lock = asyncio.Lock()
    install_error_handlers(app)
    app.include_router(read_router(protect=protect_reads))
    if not read_only:
        app.include_router(write_router())
    for router in routers:
        app.include_router(router)
    return app
