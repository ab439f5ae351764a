"""Run as ``python -m tests.workers.local_start <folder>`` with Ray not started: the executor factory starts a
local Ray, runs one batch and shuts Ray down on close. Prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import ray  # noqa: TID251 (tests of the Ray adapter)

from promptopt.cache import DiskResponseCache
from promptopt.engine import LocalBudget, Services
from promptopt.workers import ray_executor_factory
from tests.workers.fakes import env_checking_backend
from tests.workers.helpers import context, jobs


def main(tmp: Path) -> None:
    ctx = context(tmp)
    factory = ray_executor_factory(
        loaded=ctx.loaded,
        cache=DiskResponseCache(tmp / "cache"),
        store_url=f"sqlite:///{tmp}/s.db",
        concurrency=4,
        backend_factory=env_checking_backend,
    )
    t0 = time.monotonic()
    executor = factory(Services(backend=env_checking_backend(), budget=LocalBudget(model_calls=100)))
    started = time.monotonic() - t0
    cpus = ray.cluster_resources().get("CPU")
    try:
        outcomes = asyncio.run(executor.run_batch(ctx, jobs()[:2]))
    finally:
        executor.close()
    print(
        json.dumps(
            {
                "states": [o.state for o in outcomes],
                "errors": [o.error for o in outcomes],
                "cpus": cpus,
                "start_s": round(started, 2),
                "ray_after_close": ray.is_initialized(),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
