"""Trials as Ray tasks across a cluster, sharing one budget, one per-model limit, the model actors and the
response cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ray  # noqa: TID251 (workers/ is the Ray adapter)
from ray.exceptions import RayTaskError  # noqa: TID251

from promptopt.cache import ResponseCache
from promptopt.engine import LocalBudget
from promptopt.search._executor import TrialExecutor
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome
from promptopt.search_spaces import SearchSpace
from promptopt.util import scrub_secrets
from promptopt.workers._budget import BudgetLink
from promptopt.workers._cluster import ensure_ray
from promptopt.workers._limiter import LimiterActor
from promptopt.workers._models import BackendFactory, ModelActors, uses_local_models
from promptopt.workers._trial import trial_task


class RayExecutor(TrialExecutor):
    """Runs each trial as a Ray task (spread over the nodes); see :func:`ray_executor_factory`.

    Args:
        cache: Response cache shared by the workers; it is pickled and reopened in each (a folder on one
            machine, Redis across machines).
        store_url: Each worker opens its own store from it.
        budget: The run's budget; the workers spend from an actor that mirrors it, and its usage is added
            back into ``budget`` after every batch.
        concurrency: Model calls in flight per model, over the whole cluster.
        backend_factory: Builds a worker's backend and each model actor's backend (picklable).
        num_cpus_per_trial: CPUs a trial reserves; it bounds the trials running at once on a node.
        owns_ray: Shut Ray down on :meth:`close` (this executor started it).
    """

    def __init__(self, *, cache: ResponseCache, store_url: Any, budget: LocalBudget | None, concurrency: int,
                 backend_factory: BackendFactory, num_cpus_per_trial: float = 0.5,
                 owns_ray: bool = False) -> None:
        self.cache, self.store_url, self.owns_ray = cache, store_url, owns_ray
        self._factory = backend_factory
        self._task = trial_task.options(num_cpus=num_cpus_per_trial, scheduling_strategy="SPREAD")
        self._budget = BudgetLink(budget) if budget is not None else None
        self._limiter = LimiterActor.remote(concurrency)
        self._models = ModelActors(backend_factory)
        self._ctx: tuple[TrialContext, Any] | None = None  # the context and its copy in the object store

    def start_model_actors(self) -> None:
        """Start a :class:`LocalModelActor` on every live node that has none (done by ``run_batch`` when the
        spec or the space names a ``local/`` model)."""
        self._models.ensure()

    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
        if uses_local_models(ctx.loaded.spec.model_dump(mode="json"), ctx.space):
            self.start_model_actors()
        if self._budget is not None:
            self._budget.begin_batch()
        refs = [self._task.remote(self._stored(ctx), job, cache=self.cache, store_url=self.store_url,
                                  budget_actor=self._budget.actor if self._budget else None,
                                  limiter_actor=self._limiter, backend_factory=self._factory) for job in jobs]
        try:
            results = await asyncio.gather(*refs, return_exceptions=True)
        except asyncio.CancelledError:
            for ref in refs:
                ray.cancel(ref)
            raise
        finally:
            if self._budget is not None:
                self._budget.end_batch()
            await self._limiter.reset.remote()
        return [r if isinstance(r, TrialOutcome) else _crashed(ctx, job, r)
                for job, r in zip(jobs, results, strict=True)]

    def _stored(self, ctx: TrialContext) -> Any:
        """``ctx`` put in the object store once (it holds the dataset), not pickled into every task."""
        if self._ctx is None or self._ctx[0] is not ctx:
            self._ctx = (ctx, ray.put(ctx))
        return self._ctx[1]

    def close(self) -> None:
        """Kill this executor's actors; shut Ray down too if this executor started it."""
        if not ray.is_initialized():
            return
        self._models.close()
        if self._budget is not None:
            self._budget.close()
        ray.kill(self._limiter)
        if self.owns_ray:
            ray.shutdown()


def _crashed(ctx: TrialContext, job: TrialJob, exc: BaseException) -> TrialOutcome:
    """The outcome of a trial whose task raised or whose worker died."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc  # the trial's own exception, not Ray's wrapper
    config_hash = SearchSpace.from_json(ctx.space).config(job.params).hash
    return TrialOutcome(number=job.number, state="failed", config_hash=config_hash,
                        error=scrub_secrets(f"the trial's worker failed: {type(cause).__name__}: {cause}"[:2000]))


def ray_executor_factory(*, loaded: Any, cache: ResponseCache, store_url: Any, address: str | None = None,
                         concurrency: int, backend_factory: BackendFactory | None = None,
                         num_cpus_per_trial: float = 0.5) -> Callable[..., TrialExecutor]:
    """The ``executor_factory`` of a :class:`promptopt.search.SearchRun` that runs trials on Ray.

    Ray is joined when the factory is called: an already initialised Ray as is, else the cluster at
    ``address``, else a new local cluster, which the executor shuts down on ``close`` (a cluster it joined
    is left running).

    Args:
        loaded: The loaded spec; its ``local/`` models get a model actor on every node.
        backend_factory: A module-level function returning the backend (default: ``LiteLLMBackend``);
            tests pass a scripted one.

    Example::

        factory = ray_executor_factory(loaded=loaded, cache=get_cache(), store_url=store.url, concurrency=4)
        SearchRun(..., executor_factory=factory)
    """
    from promptopt.models import get_backend

    def factory(*, budget: LocalBudget | None) -> TrialExecutor:
        owns = ensure_ray(address)
        executor = RayExecutor(cache=cache, store_url=store_url, budget=budget, concurrency=concurrency,
                               backend_factory=backend_factory or get_backend,
                               num_cpus_per_trial=num_cpus_per_trial, owns_ray=owns)
        if uses_local_models(loaded.spec.model_dump(mode="json")):
            executor.start_model_actors()  # they load while the first batch is prepared
        return executor

    return factory
