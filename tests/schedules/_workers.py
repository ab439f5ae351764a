"""Process bodies of the scheduler concurrency tests (importable by the forkserver's children)."""

from __future__ import annotations

from pathlib import Path

from promptopt.cache import DiskResponseCache
from promptopt.schedules import Scheduler
from promptopt.store import get_store
from tests.schedules.helpers import backend


def tick(url: str, folder: str, *, owner: str, lease_s: float, latency_s: float) -> None:
    """One scheduler with a store of its own and a slow fake model: one tick."""
    store = get_store(url)
    try:
        Scheduler(
            store,
            backend=backend(latency_s),
            cache=DiskResponseCache(str(Path(folder) / "cache")),
            work_dir=Path(folder) / "work",
            lease_s=lease_s,
            owner=owner,
        ).tick()
    finally:
        store.dispose()
