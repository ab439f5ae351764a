"""JSON responses with an ETag, answered with 304 when the client already holds them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or wanted in tags


def json_bytes(payload: Any) -> tuple[bytes, str]:
    """``payload`` as compact JSON, and the strong ETag of those bytes."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def etag_json(request: Request, payload: Any) -> Response:
    """``payload`` as JSON with a strong ETag of its bytes; ``304 Not Modified`` if ``If-None-Match`` has it."""
    return etag_response(request, *json_bytes(payload))


def etag_response(request: Request, body: bytes, etag: str) -> Response:
    """``body`` (JSON) with ``etag``, or ``304 Not Modified`` when ``If-None-Match`` holds it.

    ``Cache-Control: no-cache`` lets caches keep the body but makes them ask again (a label can move).
    """
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
