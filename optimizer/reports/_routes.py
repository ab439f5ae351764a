"""Reports over HTTP, for ``optimize serve``: stable URLs per run and per prompt.

``GET /runs/{run_id}/report`` (HTML), ``/runs/{run_id}/report.md``, ``/runs/{run_id}/report.json`` and
``GET /prompts/{name}/leaderboard`` (HTML). An unknown run or prompt answers 404 with the server's JSON error
body. Reads need the bearer token only when the server protects reads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from promptopt.errors import NotFound
from promptopt.reports._build import build_run_report
from promptopt.reports._html import render_html, render_leaderboard_html
from promptopt.reports._markdown import render_markdown
from promptopt.reports._prompts import build_prompt_leaderboard
from promptopt.reports._values import RunReport
from promptopt.server import ErrorBody, ErrorDetail, read_access, responses
from promptopt.store import Store

_bearer = HTTPBearer(auto_error=False)
RunId = Path(description="Run id, or a unique prefix of at least 6 characters.")
PromptName = Path(max_length=100, description="Prompt name (the spec's task.name).")
_CACHED_RUNS = 8  # renderings; an HTML one is about 5 MB
_RENDER: dict[str, Callable[[RunReport], str]] = {
    "html": render_html,
    "markdown": render_markdown,
    "json": lambda r: r.model_dump_json(),
}
_MEDIA = {"html": "text/html; charset=utf-8", "markdown": "text/markdown; charset=utf-8", "json": "application/json"}
_404 = responses(404)


def _read_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    # Inside `optimize serve` the app's Access decides; a bare app (tests, embedding) has none and is open.
    if getattr(request.app.state, "access", None) is not None:
        read_access(request, credentials)


def _not_found(exc: NotFound) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code="not_found", message=str(exc)))
    return JSONResponse(body.model_dump(mode="json"), status_code=404)


def router(store_factory: Callable[[], Store]) -> APIRouter:
    """The report routes over the store that ``store_factory()`` returns (called on each request, so it should
    return a shared :class:`~promptopt.store.Store`).

    Reports of finished runs never change, so the last few renderings are kept in memory; the report of a run
    still going is computed again on every request.

    Example:
        >>> store = get_store()  # doctest: +SKIP
        >>> app = create_app(store, token=token, routers=[router(lambda: store)])  # doctest: +SKIP
    """
    api = APIRouter(tags=["reports"], dependencies=[Depends(_read_access)])

    def rendered(run_id: str, kind: str) -> str:
        return _RENDER[kind](build_run_report(store_factory(), run_id))

    finished = functools.lru_cache(maxsize=_CACHED_RUNS)(rendered)

    def answer(run_id: str, kind: str) -> Response:
        try:
            record = store_factory().get_run(run_id)
        except NotFound as exc:
            return _not_found(exc)
        body = (finished if record.status == "finished" else rendered)(record.id, kind)
        return Response(body, media_type=_MEDIA[kind])

    @api.get("/runs/{run_id}/report", response_class=HTMLResponse, responses=_404)
    def run_html(run_id: str = RunId) -> Any:
        """The run report as one self-contained HTML page."""
        return answer(run_id, "html")

    @api.get("/runs/{run_id}/report.md", response_class=Response, responses=_404)
    def run_markdown(run_id: str = RunId) -> Any:
        """The run report in Markdown (PR comment / CI step summary)."""
        return answer(run_id, "markdown")

    @api.get("/runs/{run_id}/report.json", response_model=RunReport, responses=_404)
    def run_json(run_id: str = RunId) -> Any:
        """The run report's data."""
        return answer(run_id, "json")

    @api.get("/prompts/{name}/leaderboard", response_class=HTMLResponse, responses=_404)
    def prompt_html(name: str = PromptName) -> Any:
        """Every version and run of a prompt, scores over time by model, as one HTML page."""
        try:
            return HTMLResponse(render_leaderboard_html(build_prompt_leaderboard(store_factory(), name)))
        except NotFound as exc:
            return _not_found(exc)

    return api
