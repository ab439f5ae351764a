"""Content-addressed response cache: the key is a hash of what decides the answer, never of credentials."""

from __future__ import annotations

import abc
from typing import Any

from promptopt.data import content_hash
from promptopt.models import ModelRequest

CACHE_VERSION = 1


def cache_key(request: ModelRequest, repeat: int) -> str:
    """Hash of model, messages, decoding params, constraint, tools, response format and the repeat index.

    The timeout and anything about endpoints or keys are left out on purpose: they do not change the answer,
    and a credential must never reach the cache.
    """
    material = request.model_dump(mode="json", exclude={"timeout_s"})
    return content_hash({"v": CACHE_VERSION, "request": material, "repeat": repeat})


class ResponseCache(abc.ABC):
    """Contract: ``get`` returns exactly what ``set`` stored for the key (a JSON-able dict) or None;
    ``set`` is durable when it returns (a crash right after loses nothing); both are safe across threads and
    processes sharing the same location."""

    @abc.abstractmethod
    def get(self, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def set(self, key: str, value: dict[str, Any]) -> None: ...

    def close(self) -> None:
        """Release handles; default does nothing."""

    def describe(self) -> str:
        return type(self).__name__


class NullCache(ResponseCache):
    """``--no-cache``: never hits, stores nothing."""

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def set(self, key: str, value: dict[str, Any]) -> None:
        return None

    def describe(self) -> str:
        return "off"
