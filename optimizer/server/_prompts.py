"""Routes of the registry: read prompts, render them, move labels, and run a prompt with the server's keys."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from promptopt.config import PromptConfig
from promptopt.errors import InputError
from promptopt.names import DEFAULT_LABEL, LABEL_PATTERN, MAX_VERSION, NAME_PATTERN
from promptopt.registry import LabelEvent, PromptSummary, PromptVersion, Registry
from promptopt.server._auth import read_access, write_access
from promptopt.server._errors import responses
from promptopt.server._http import etag_json, etag_response, json_bytes
from promptopt.server._schemas import (
    InvokeRequest,
    InvokeResponse,
    LabelRequest,
    RenderRequest,
    RenderResponse,
    RollbackRequest,
)
from promptopt.spec import template_variables

NamePath = Path(pattern=NAME_PATTERN, max_length=100, description="Prompt name.", examples=["support-triage"])
LabelPath = Path(pattern=LABEL_PATTERN, max_length=64, description="Label name.", examples=["production"])
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified (If-None-Match)"}}


def registry_of(request: Request) -> Registry:
    """The app's registry (a dependency for routers mounted beside these)."""
    return request.app.state.registry  # type: ignore[no-any-return]


class VersionCache:
    """Versions by ``(name, number)`` with their JSON body and ETag. A registered version never changes, so
    entries never go stale; only which version a label points at is read from the store on every request."""

    def __init__(self, registry: Registry, size: int = 1024) -> None:
        self._load = functools.lru_cache(maxsize=size)(self._fetch)
        self._registry = registry

    def _fetch(self, name: str, version: int) -> tuple[PromptVersion, bytes, str]:
        found = self._registry.get(name, version=version)
        return (found, *json_bytes(found.model_dump(mode="json", by_alias=True)))

    def get(self, name: str, label: str | None, version: int | None) -> tuple[PromptVersion, bytes, str]:
        """The version pinned by number, else the one ``label`` (default ``production``) points at now."""
        if label is not None and version is not None:
            raise InputError("query", "version", "give a label or a version, not both")
        if version is None:
            version = self._registry.version_of(name, label or DEFAULT_LABEL)
        return self._load(name, version)


def _versions(request: Request) -> VersionCache:
    return request.app.state.versions  # type: ignore[no-any-return]


def _select(request: Request, name: str, label: str | None, version: int | None) -> PromptVersion:
    return _versions(request).get(name, label, version)[0]


def _messages(config: PromptConfig, variables: dict[str, Any]) -> list[dict[str, str]]:
    try:
        return config.render(variables)
    except KeyError:
        needed = set().union(*(template_variables(m.content) for m in config.messages))
        missing = sorted(needed - set(variables))
        field = f"variables.{missing[0]}" if missing else "variables"
        raise InputError(
            "request body", field, f"the template reads {', '.join(missing) or 'a value'} that variables does not give"
        ) from None
    except Exception as exc:  # the sandbox refusing something, a value the template cannot use
        raise InputError(
            "request body", "variables", f"cannot render the template: {type(exc).__name__}: {exc}"
        ) from None


def _who(request: Request, who: str | None) -> str:
    return who or f"api ({request.client.host if request.client else 'unknown'})"


def read_router(*, protect: bool) -> APIRouter:
    """The read routes; with ``protect`` they need the token (and the OpenAPI document says so)."""
    router = APIRouter(
        prefix="/v1",
        tags=["prompts"],
        dependencies=[Depends(read_access)] if protect else [],
        responses=responses(401, 403, 503) if protect else responses(503),
    )

    @router.get("/prompts", response_model=list[PromptSummary], responses=_NOT_MODIFIED)
    def list_prompts(request: Request) -> Any:
        """Every prompt with its newest version and where its labels point."""
        return etag_json(request, [p.model_dump(mode="json") for p in registry_of(request).list_prompts()])

    @router.get("/prompts/{name}", response_model=PromptVersion, responses={**_NOT_MODIFIED, **responses(404, 422)})
    def get_prompt(
        request: Request,
        name: str = NamePath,
        label: str | None = Query(
            None, pattern=LABEL_PATTERN, max_length=64, description="Default: production (when no version is given)."
        ),
        version: int | None = Query(None, ge=1, le=MAX_VERSION),
    ) -> Any:
        """One version: pinned by number, or the one a label points at (default ``production``)."""
        _, body, etag = _versions(request).get(name, label, version)
        return etag_response(request, body, etag)

    @router.get(
        "/prompts/{name}/versions",
        response_model=list[PromptVersion],
        responses={**_NOT_MODIFIED, **responses(404, 422)},
    )
    def list_versions(request: Request, name: str = NamePath) -> Any:
        """Every version of a prompt, oldest first."""
        versions = registry_of(request).versions(name)
        return etag_json(request, [v.model_dump(mode="json", by_alias=True) for v in versions])

    @router.get(
        "/prompts/{name}/history", response_model=list[LabelEvent], responses={**_NOT_MODIFIED, **responses(404, 422)}
    )
    def history(request: Request, name: str = NamePath) -> Any:
        """The audit log of the prompt's labels, oldest first (moves, and promotions the gate refused)."""
        return etag_json(request, [e.model_dump(mode="json") for e in registry_of(request).history(name)])

    @router.post("/prompts/{name}/render", response_model=RenderResponse, responses=responses(404, 422))
    def render(request: Request, body: RenderRequest, name: str = NamePath) -> RenderResponse:
        """Messages and call parameters, ready for ``litellm.completion(messages=..., **params)``."""
        found = _select(request, name, body.label, body.version)
        return RenderResponse(
            name=found.name,
            version=found.version,
            config_hash=found.config_hash,
            messages=_messages(found.config, body.variables),
            params=found.config.call_params(),
        )

    return router


def write_router() -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["labels"], dependencies=[Depends(write_access)], responses=responses(401, 403, 503)
    )

    @router.post("/prompts/{name}/labels/{label}", response_model=LabelEvent, responses=responses(404, 422))
    def set_label(request: Request, body: LabelRequest, name: str = NamePath, label: str = LabelPath) -> LabelEvent:
        """Point a label at a version (promote); the move is written to the audit log."""
        return registry_of(request).set_label(name, label, body.version, who=_who(request, body.who), why=body.why)

    @router.post("/prompts/{name}/labels/{label}/rollback", response_model=LabelEvent, responses=responses(404, 422))
    def rollback(
        request: Request, body: RollbackRequest | None = None, name: str = NamePath, label: str = LabelPath
    ) -> LabelEvent:
        """Move a label back to the version it pointed at before its last move."""
        body = body or RollbackRequest()
        return registry_of(request).rollback(name, label, who=_who(request, body.who), why=body.why)

    @router.post("/prompts/{name}/invoke", response_model=InvokeResponse, responses=responses(404, 422, 429, 502))
    async def invoke(request: Request, body: InvokeRequest, name: str = NamePath) -> InvokeResponse:
        """Run the version through its model with the server's credentials (the same call an eval makes)."""
        from promptopt.engine import request_for

        found = await run_in_threadpool(_select, request, name, body.label, body.version)
        _messages(found.config, body.variables)
        backend = await _backend(request)
        answer = await backend.complete(request_for(found.config, body.variables, body.timeout_s))
        return InvokeResponse(
            name=found.name,
            version=found.version,
            text=answer.text,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost_usd=answer.cost_usd,
            latency_s=answer.latency_s,
            tool_calls=None if answer.tool_calls is None else list(answer.tool_calls),
        )

    return router


async def _backend(request: Request) -> Any:
    state = request.app.state
    if state.backend is None:
        async with state.backend_lock:
            if state.backend is None:
                from promptopt.models import get_backend

                state.backend = await run_in_threadpool(get_backend)  # imports litellm: seconds, off the loop
    return state.backend
