"""Trials on long-lived trial workers across a cluster, sharing one budget (leased), one per-model limit
(split between the workers), the model actors and the response cache."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import ray  # noqa: TID251 (workers/ is the Ray adapter)
from ray.exceptions import RayTaskError  # noqa: TID251

from promptopt.cache import ResponseCache
from promptopt.engine import LocalBudget, Services
from promptopt.search import TrialContext, TrialExecutor, TrialJob, TrialOutcome, failed_outcome
from promptopt.workers._budget import BudgetLink
from promptopt.workers._cluster import ensure_ray
from promptopt.workers._model_actors import BackendFactory, ModelActors, uses_local_models
from promptopt.workers._worker import TrialWorkers

CANCEL_WAIT_S = 10.0  # how long a cancelled batch waits for its trials to stop


class RayExecutor(TrialExecutor):
    """Runs the trials of a batch on :class:`TrialWorker` actors spread over the nodes, several per worker at
    once; see :func:`ray_executor_factory`.

    Args:
        cache: Response cache shared by the workers; it is pickled and reopened in each (a folder on one
            machine, Redis across machines).
        store_url: Each worker opens its own store from it, once.
        budget: The run's budget; the workers lease from an actor that mirrors it, and its usage is added
            back into ``budget`` after every batch.
        concurrency: Model calls in flight per model, over the whole cluster.
        backend_factory: Builds a worker's backend and each model actor's backend (picklable).
        workers_per_node: Trial workers per node (default: one per two CPUs the node offers to Ray).
        owns_ray: Shut Ray down on :meth:`close` (this executor started it).
    """

    def __init__(
        self,
        *,
        cache: ResponseCache,
        store_url: Any,
        budget: LocalBudget | None,
        concurrency: int,
        backend_factory: BackendFactory,
        workers_per_node: int | None = None,
        owns_ray: bool = False,
    ) -> None:
        self.cache, self.store_url, self.concurrency, self.owns_ray = cache, store_url, concurrency, owns_ray
        self._workers = TrialWorkers(
            per_node=workers_per_node, cache=cache, store_url=store_url, backend_factory=backend_factory
        )
        self._budget = BudgetLink(budget) if budget is not None else None
        self._models = ModelActors(backend_factory)
        self._ctx: tuple[TrialContext, Any] | None = None  # the context and its copy in the object store
        self._batches = 0

    def start_workers(self) -> None:
        """Start the trial workers on every live node that has none (``run_batch`` also replaces dead ones)."""
        self._workers.ensure()

    def wait_for_workers(self, timeout_s: float = 120.0) -> None:
        """Block until every trial worker has started (for benchmarks that time start-up apart; ``run_batch``
        does not need it). Not for async code."""
        ray.get([w.node_id.remote() for w in self._workers.handles()], timeout=timeout_s)

    def start_model_actors(self) -> None:
        """Start a :class:`LocalModelActor` on every live node that has none (done by ``run_batch`` when the
        spec or the space names a ``local/`` model)."""
        self._models.ensure()

    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
        if uses_local_models(ctx.loaded.spec.model_dump(mode="json"), ctx.space):
            self.start_model_actors()
        if not jobs:
            return []
        self._batches += 1
        await self._workers.ready()
        if self._budget is not None:
            await self._budget.begin_batch(self._batches)
        box = [self._stored(ctx)]  # a ref inside a list reaches the worker as a ref, which it resolves once
        budget_actor = self._budget.actor if self._budget else None
        refs = [
            worker.run.remote(box, job, batch=self._batches, slots=slots, budget_actor=budget_actor)
            for job, (worker, slots) in zip(jobs, self._workers.plan(len(jobs), self.concurrency), strict=True)
        ]
        try:
            results = await asyncio.gather(*refs, return_exceptions=True)
        except asyncio.CancelledError:
            await _cancel(refs)
            raise
        finally:
            if self._budget is not None:
                await self._budget.end_batch()
        return [
            r if isinstance(r, TrialOutcome) else _crashed(ctx, job, r) for job, r in zip(jobs, results, strict=True)
        ]

    def _stored(self, ctx: TrialContext) -> Any:
        """``ctx`` put in the object store once (it holds the dataset), not pickled into every call."""
        if self._ctx is None or self._ctx[0] is not ctx:
            self._ctx = (ctx, ray.put(ctx))
        return self._ctx[1]

    def close(self) -> None:
        """Kill this executor's actors; shut Ray down too if this executor started it."""
        if not ray.is_initialized():
            return
        self._workers.close()
        self._models.close()
        if self._budget is not None:
            self._budget.close()
        if self.owns_ray:
            ray.shutdown()


async def _cancel(refs: list[Any]) -> None:
    """Cancel the trials, and wait a bounded time for them to stop, so that their unspent leases are back
    before the batch's spending is read."""
    for ref in refs:
        ray.cancel(ref)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*refs, return_exceptions=True), CANCEL_WAIT_S)


def _crashed(ctx: TrialContext, job: TrialJob, exc: BaseException) -> TrialOutcome:
    """The outcome of a trial whose task raised or whose worker died."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc  # the trial's own exception, not Ray's wrapper
    return failed_outcome(ctx, job, f"the trial's worker failed: {type(cause).__name__}: {cause}")


def ray_executor_factory(
    *,
    loaded: Any,
    cache: ResponseCache,
    store_url: Any,
    address: str | None = None,
    concurrency: int,
    backend_factory: BackendFactory | None = None,
    workers_per_node: int | None = None,
) -> Callable[..., TrialExecutor]:
    """The ``executor_factory`` of a :class:`promptopt.search.SearchRun` that runs trials on Ray, with the run's
    budget (``services.budget``). The workers reopen ``cache`` and the store at ``store_url`` themselves: they
    get picklable descriptions, not the driver's live services.

    Ray is joined when the factory is called: an already initialised Ray as is, else the cluster at
    ``address``, else a new local cluster, which the executor shuts down on ``close`` (a cluster it joined
    is left running).

    Args:
        loaded: The loaded spec; its ``local/`` models get a model actor on every node.
        backend_factory: A module-level function returning the backend (default: ``LiteLLMBackend``);
            tests pass a scripted one.
        workers_per_node: Trial workers per node (default: one per two CPUs, at least one).

    Example::

        factory = ray_executor_factory(loaded=loaded, cache=get_cache(), store_url=store.url, concurrency=4)
        SearchRun(..., executor_factory=factory)
    """
    from promptopt.models import get_backend

    def factory(services: Services) -> TrialExecutor:
        if services.budget is not None and not isinstance(services.budget, LocalBudget):
            raise TypeError("the Ray executor mirrors a LocalBudget into its budget actor")
        owns = ensure_ray(address)
        executor = RayExecutor(
            cache=cache,
            store_url=store_url,
            budget=services.budget,
            concurrency=concurrency,
            backend_factory=backend_factory or get_backend,
            workers_per_node=workers_per_node,
            owns_ray=owns,
        )
        executor.start_workers()  # their processes start while the first batch is prepared
        if uses_local_models(loaded.spec.model_dump(mode="json")):
            executor.start_model_actors()
        return executor

    return factory
