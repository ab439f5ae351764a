"""HTTP bulk ingestion of logs and feedback, mounted beside the registry's routes by ``optimize serve``.

``POST /v1/logs:bulk`` ``{"logs": [...]}`` and ``POST /v1/feedback:bulk`` ``{"feedback": [...]}`` need the
server's bearer token. A batch is stored whole or not at all: a bad entry gets ``422`` naming its field
(``body.logs.3.latency_s``), a feedback entry on an unknown log ``422`` naming ``body.feedback.<i>.log_id``.
Entries whose id is stored already are skipped, so a client may resend a batch it is unsure about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends

from promptopt.logs._store import LogStore
from promptopt.logs._values import FeedbackBatch, IngestResult, LogBatch
from promptopt.server import responses, write_access
from promptopt.store import Store


def router(store_factory: Callable[[], Store], auth: Callable[..., Any] = write_access) -> APIRouter:
    """The ingestion routes over the store ``store_factory()`` returns, each guarded by the dependency
    ``auth`` (default: the server's bearer token, :func:`promptopt.server.write_access`).

    Example:
        >>> app = create_app(store, token=token, routers=[router(lambda: store)])  # doctest: +SKIP
    """
    api = APIRouter(prefix="/v1", tags=["logs"], dependencies=[Depends(auth)])

    @api.post(
        "/logs:bulk",
        response_model=IngestResult,
        responses=responses(401, 403, 422, 503),
        summary="Store a batch of logged model calls",
    )
    def ingest_logs(batch: LogBatch) -> IngestResult:
        return LogStore(store_factory()).add_logs(batch.logs)

    @api.post(
        "/feedback:bulk",
        response_model=IngestResult,
        responses=responses(401, 403, 422, 503),
        summary="Store a batch of feedback on logged calls",
    )
    def ingest_feedback(batch: FeedbackBatch) -> IngestResult:
        return LogStore(store_factory()).add_feedback(batch.feedback)

    return api


def logs_router(store: Store) -> APIRouter:
    """``router`` over one store: the shape ``optimize serve``'s ``routers`` factories have (store -> router)."""
    return router(lambda: store)
