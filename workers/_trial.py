"""The Ray task that runs one trial on a worker, with the cluster-wide budget, limiter and model actors."""

from __future__ import annotations

import asyncio
from typing import Any

import ray  # noqa: TID251 (workers/ is the Ray adapter)

from promptopt.cache import ResponseCache
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome, run_trial
from promptopt.workers._budget import RayBudget
from promptopt.workers._cluster import current_node_id
from promptopt.workers._limiter import RayLimiter
from promptopt.workers._models import BackendFactory, RoutedBackend


@ray.remote(max_retries=0)
def trial_task(ctx: TrialContext, job: TrialJob, *, cache: ResponseCache, store_url: Any,
               budget_actor: Any | None, limiter_actor: Any, backend_factory: BackendFactory) -> TrialOutcome:
    """Run one trial on this worker. Not retried: a crashed worker is a failed trial (the driver's
    outcome), which the search records as such."""
    return asyncio.run(_trial(ctx, job, cache=cache, store_url=store_url, budget_actor=budget_actor,
                              limiter_actor=limiter_actor, backend_factory=backend_factory))


async def _trial(ctx: TrialContext, job: TrialJob, *, cache: ResponseCache, store_url: Any,
                 budget_actor: Any | None, limiter_actor: Any,
                 backend_factory: BackendFactory) -> TrialOutcome:
    from promptopt.store import get_store

    store = get_store(store_url)
    backend = RoutedBackend(backend_factory)
    budget = RayBudget(budget_actor) if budget_actor is not None else None
    try:
        return await run_trial(ctx, job, backend=backend, cache=cache, store=store, budget=budget,
                               limiter=RayLimiter(limiter_actor), node=current_node_id())
    finally:
        await backend.aclose()
        store.dispose()
