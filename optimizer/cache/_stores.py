"""Disk (diskcache, SQLite-backed, safe across processes) and Redis implementations of the response cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import diskcache

from promptopt.cache._base import NullCache, ResponseCache


class DiskResponseCache(ResponseCache):
    """One diskcache folder; each ``set`` is its own committed SQLite transaction, so a SIGKILL loses at most
    the call in flight."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**34, eviction_policy="none")

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return json.loads(value) if value is not None else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._cache.set(key, json.dumps(value, ensure_ascii=False))

    def close(self) -> None:
        self._cache.close()

    def describe(self) -> str:
        return f"disk:{self.directory}"

    def __getstate__(self) -> dict[str, Any]:  # picklable for Ray workers: reopen by path
        return {"directory": str(self.directory)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"])  # type: ignore[misc]


class RedisResponseCache(ResponseCache):
    """A cache shared by workers on several machines. Keys live under a prefix; values are JSON text."""

    def __init__(self, url: str, prefix: str = "promptopt:resp:") -> None:
        import redis

        self.url, self.prefix = url, prefix
        self._client = redis.Redis.from_url(url)

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._client.get(self.prefix + key)
        return json.loads(value) if value is not None else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._client.set(self.prefix + key, json.dumps(value, ensure_ascii=False))

    def close(self) -> None:
        self._client.close()

    def describe(self) -> str:
        from promptopt.secrets import mask_url

        return f"redis:{mask_url(self.url)}"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["prefix"])  # type: ignore[misc]


def get_cache(location: str | None = None, *, enabled: bool = True) -> ResponseCache:
    """Build the cache from a location: ``redis://...`` or a folder. ``None`` reads ``OPTIMIZE_CACHE`` and
    falls back to ``.optimize/cache`` in the working directory. ``enabled=False`` gives :class:`NullCache`."""
    if not enabled:
        return NullCache()
    location = location or os.environ.get("OPTIMIZE_CACHE") or str(Path.cwd() / ".optimize" / "cache")
    if location.startswith(("redis://", "rediss://", "unix://")):
        return RedisResponseCache(location)
    return DiskResponseCache(location)
