"""Routes of the registry: read prompts, render them, move labels, and run a prompt with the server's keys.

A code task's version is served whole (its function, code hash and every prompt); rendering one needs the
prompt's name, and it is never invoked here: its function runs in the application."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from promptopt.config import PipelineConfig, PromptConfig
from promptopt.errors import InputError
from promptopt.names import DEFAULT_LABEL, LABEL_PATTERN, MAX_VERSION, NAME_PATTERN
from promptopt.registry import LabelEvent, PromptSummary, PromptVersion, Registry
from promptopt.server._auth import read_access, write_access
from promptopt.server._errors import ApiError, responses
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


def _part(found: PromptVersion, prompt: str | None) -> PromptConfig:
    """The configuration to render: the version's one prompt, or the named prompt of a code task's version."""
    title = f"{found.name} v{found.version}"
    if not isinstance(found.config, PipelineConfig):
        if prompt is not None:
            raise InputError("request body", "prompt", f"{title} is one prompt, not a code task; leave out prompt")
        return found.config
    names = list(found.config.prompts)
    if prompt is None:
        raise InputError(
            "request body",
            "prompt",
            f'{title} is a code task with prompts {names}; say which to render, e.g. "prompt": {names[0]!r}',
        )
    if prompt not in found.config.prompts:
        raise InputError("request body", "prompt", f"{title} has no prompt {prompt!r}; its prompts are {names}")
    return found.config.prompts[prompt]


def _invocable(found: PromptVersion) -> PromptConfig:
    """The version's one prompt; a code task's version is refused, since its function runs in the application."""
    if isinstance(found.config, PipelineConfig):
        raise ApiError(
            422,
            "not_invocable",
            f"{found.name} v{found.version} is a code task: its function {found.config.function} runs in your "
            f"application, not on this server, so it cannot be invoked here; fetch the version "
            f"(GET /v1/prompts/{found.name}) and run the function with PromptClient, or render one of its prompts "
            f'(POST /v1/prompts/{found.name}/render with "prompt")',
        )
    return found.config


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
        """One version: pinned by number, or the one a label points at (default ``production``).

        A code task's version is its whole bundle: ``config`` holds ``function`` (its import path),
        ``code_hash``, ``output`` and ``prompts`` (each named prompt's configuration)."""
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
        """Messages and call parameters, ready for ``litellm.completion(messages=..., **params)``. For a code
        task's version, ``prompt`` names the prompt to render (422 without it)."""
        found = _select(request, name, body.label, body.version)
        config = _part(found, body.prompt)
        return RenderResponse(
            name=found.name,
            version=found.version,
            config_hash=found.config_hash,
            prompt=body.prompt,
            messages=_messages(config, body.variables),
            params=config.call_params(),
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
        """Run the version through its model with the server's credentials (the same call an eval makes). A
        code task's version is refused (422 ``not_invocable``): its function runs in the application."""
        from promptopt.engine import answer_text, request_for

        found = await run_in_threadpool(_select, request, name, body.label, body.version)
        config = _invocable(found)
        _messages(config, body.variables)
        backend = await _backend(request)
        answer = await backend.complete(request_for(config, body.variables, body.timeout_s))
        return InvokeResponse(
            name=found.name,
            version=found.version,
            text=answer_text(config, answer),
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
