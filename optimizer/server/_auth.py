"""Bearer-token access: writes and model calls always need the token; reads only with ``protect_reads``."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from promptopt.errors import InputError
from promptopt.server._errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="The server's token (OPTIMIZE_SERVER_TOKEN or --token-file).")
TOKEN_ENV = "OPTIMIZE_SERVER_TOKEN"


@dataclass(frozen=True)
class Access:
    """Who may do what. ``token`` is ``None`` only on a read-only server with open reads."""

    token: str | None
    protect_reads: bool = False

    def __post_init__(self) -> None:
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise InputError("server token", "token", "must be non-empty and contain no whitespace")

    def __repr__(self) -> str:
        return f"Access(token={'***' if self.token else None}, protect_reads={self.protect_reads})"

    def check(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        if self.token is None:
            raise ApiError(
                403,
                "forbidden",
                "this server has no token, so it takes no writes; "
                "restart it with OPTIMIZE_SERVER_TOKEN or --token-file",
            )
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "this endpoint needs the server's bearer token in the Authorization header",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), self.token.encode()):
            raise ApiError(403, "forbidden", "the bearer token is not this server's")


def _access(request: Request) -> Access:
    return request.app.state.access  # type: ignore[no-any-return]


def write_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    """Dependency of every route that changes something or calls a model."""
    _access(request).check(credentials)


def read_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    """Dependency of every read route: open unless the server was started with ``protect_reads``."""
    access = _access(request)
    if access.protect_reads:
        access.check(credentials)
