"""The registry's HTTP API (FastAPI), served by ``optimize serve``.

``create_app(store, token=..., routers=[...])`` builds it; more routers (reports, logs) mount through
``routers`` and reuse :func:`read_access`, :func:`write_access` and :func:`registry_of` as dependencies.
Every error is JSON (:class:`ErrorBody`): 401/403 for the token, 404 for an unknown prompt, label or
version, 422 naming the bad field.
"""

from promptopt.server._app import create_app
from promptopt.server._auth import TOKEN_ENV, Access, read_access, write_access
from promptopt.server._errors import ApiError, ErrorBody, ErrorDetail, responses
from promptopt.server._prompts import registry_of
from promptopt.server._thread import serve_in_thread

__all__ = [
    "TOKEN_ENV",
    "Access",
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "create_app",
    "read_access",
    "registry_of",
    "responses",
    "serve_in_thread",
    "write_access",
]
