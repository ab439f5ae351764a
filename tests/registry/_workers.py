"""Process bodies of the concurrency tests (importable by the forkserver's children)."""

from __future__ import annotations

from typing import Any

from promptopt.registry import Registry
from promptopt.store import get_store
from tests.registry.helpers import config


def register_and_promote(url: str, index: int, start: Any, results: Any) -> None:
    """Open a store of its own, wait for the others, then register and move labels as fast as it can."""
    store = get_store(url)
    try:
        registry = Registry(store)
        start.wait(timeout=60)
        mine, created = registry.register("shared", config(f"worker {index}"), created_by=f"w{index}")
        common, _ = registry.register("shared", config("the same content"), created_by=f"w{index}")
        registry.set_label("shared", "production", mine.version, who=f"w{index}")
        registry.set_label("shared", "staging", common.version if index % 2 else mine.version, who=f"w{index}")
        results.put((index, mine.version, created, common.version))
    finally:
        store.dispose()
