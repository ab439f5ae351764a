"""Long-lived trial workers: async actors that run many trials at once, for the whole run.

A worker process starts once per run (not once per trial or per batch), keeps one backend, store and cache
open, and runs each trial it is given as an asyncio task; the trials on a worker share its slice of the
per-model limit (:func:`split_slots`) and lease their budget from the :class:`BudgetActor`
(:class:`TrialGate`). A worker that dies fails the trials it was running (a call is never retried: it may
have been paid) and is replaced before the next batch; the workers of a node that left are dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import ray  # noqa: TID251 (workers/ is the Ray adapter)
from ray.exceptions import RayActorError  # noqa: TID251
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: TID251

from promptopt.cache import ResponseCache
from promptopt.engine import Budget, CallLimiter, LocalLimiter, Services
from promptopt.search import TrialContext, TrialJob, TrialOutcome, run_trial
from promptopt.workers._cluster import alive_node_cpus, current_node_id
from promptopt.workers._lease import LeasePool
from promptopt.workers._limiter import split_slots
from promptopt.workers._model_actors import BackendFactory, RoutedBackend
from promptopt.workers._trial_gate import MeteredBackend, TrialGate


@ray.remote(num_cpus=0, max_concurrency=1000, max_restarts=0)
class TrialWorker:
    """Runs trials as concurrent asyncio tasks in one process. It reserves no CPU: the executor decides how
    many workers a node gets, and the trials mostly wait on the model."""

    def __init__(self, *, cache: ResponseCache, store_url: Any, backend_factory: BackendFactory) -> None:
        from promptopt.store import get_store

        # Built now (litellm imported, the database opened) while the driver prepares the first batch, not
        # in the first trial.
        routed = RoutedBackend(backend_factory)
        routed.direct()
        self._cache, self._store, self._backend = cache, get_store(store_url), MeteredBackend(routed)
        self._ctx: tuple[str, TrialContext] | None = None
        self._limiter: tuple[int, LocalLimiter] | None = None
        self._node = current_node_id()

    async def run(
        self, ctx_box: list[Any], job: TrialJob, *, batch: int, slots: int, budget_actor: Any | None
    ) -> TrialOutcome:
        """Run ``job``; ``ctx_box`` holds the context's object ref (fetched once per run, not per trial),
        ``slots`` is this worker's share of the per-model limit in ``batch``."""
        ctx = await self._context(ctx_box[0])
        limiter: CallLimiter = self._batch_limiter(batch, slots)
        budget: Budget | None = None
        pool = None
        if budget_actor is not None:
            expected = len(ctx.dataset.validation.cases) * ctx.loaded.spec.eval.repeats
            pool = LeasePool(budget_actor.lease.remote, expected=expected)
            limiter = budget = TrialGate(limiter, pool)
        try:
            services = Services(
                backend=self._backend,
                cache=self._cache,
                records=self._store,
                settings=ctx.loaded.spec.eval,
                budget=budget,
                limiter=limiter,
            )
            return await run_trial(ctx, job, services=services, node=self._node)
        finally:
            if pool is not None and budget_actor is not None:
                calls, usd = pool.drain()
                if calls or usd:  # before the outcome leaves, so the driver's sync sees it
                    await budget_actor.give_back.remote(calls, usd, batch)

    async def node_id(self) -> str:
        return self._node

    async def _context(self, ref: Any) -> TrialContext:
        if self._ctx is None or self._ctx[0] != ref.hex():
            self._ctx = (ref.hex(), await ref)
        return self._ctx[1]

    def _batch_limiter(self, batch: int, slots: int) -> LocalLimiter:
        # The trials of one batch share one limiter; a trial left over from a cancelled batch keeps its own.
        if self._limiter is None or self._limiter[0] != batch:
            self._limiter = (batch, LocalLimiter(slots))
        return self._limiter[1]


def workers_for(cpus: float) -> int:
    """Default trial workers on a node with ``cpus`` CPUs: one per two CPUs, at least one. A worker mostly
    waits on the model while litellm's per-call CPU keeps about one core busy; on a 2-CPU machine a second
    worker doubled the start-up (each imports litellm) without raising the trial rate."""
    return max(1, int(cpus) // 2)


class TrialWorkers:
    """The driver's trial workers: ``per_node`` on every live node (default :func:`workers_for`), started when
    a node is first seen, reused for every batch, killed by :meth:`close`."""

    def __init__(
        self, *, per_node: int | None, cache: ResponseCache, store_url: Any, backend_factory: BackendFactory
    ) -> None:
        self._per_node = per_node
        self._args = {"cache": cache, "store_url": store_url, "backend_factory": backend_factory}
        self._by_node: dict[str, list[Any]] = {}
        self._turn = 0

    def ensure(self) -> None:
        """Start workers on the live nodes that have none and forget those of nodes that left (nodes may join
        or leave between batches)."""
        alive = alive_node_cpus()
        for node in [n for n in self._by_node if n not in alive]:
            self._kill(self._by_node.pop(node))
        for node, cpus in alive.items():
            if node not in self._by_node:
                self._by_node[node] = [self._start(node) for _ in range(self._per_node or workers_for(cpus))]

    async def ready(self) -> None:
        """:meth:`ensure`, then wait until every worker answers, and replace those that died."""
        self.ensure()
        for node, workers in self._by_node.items():
            answers = await asyncio.gather(*(w.node_id.remote() for w in workers), return_exceptions=True)
            for i, answer in enumerate(answers):
                if isinstance(answer, RayActorError):
                    self._kill([workers[i]])
                    workers[i] = self._start(node)

    def _start(self, node: str) -> Any:
        strategy = NodeAffinitySchedulingStrategy(node, soft=False)  # soft=True may crowd one node
        return cast(Any, TrialWorker).options(scheduling_strategy=strategy).remote(**self._args)  # an actor class

    def plan(self, jobs: int, concurrency: int) -> list[tuple[Any, int]]:
        """A worker and its slots for each of ``jobs`` trials: round robin over the workers with the nodes
        interleaved (so trials spread over nodes), starting where the last batch stopped, on no more workers
        than ``concurrency`` allows one slot each."""
        ranked = [(rank, w) for workers in self._by_node.values() for rank, w in enumerate(workers)]
        ring = [w for _, w in sorted(ranked, key=lambda pair: pair[0])]  # stable: nodes keep their order
        used = min(len(ring), concurrency, jobs)
        chosen = [ring[(self._turn + i) % len(ring)] for i in range(used)]
        self._turn = (self._turn + used) % len(ring)
        slots = split_slots(concurrency, [len(range(i, jobs, used)) for i in range(used)])
        return [(chosen[i % used], slots[i % used]) for i in range(jobs)]

    def handles(self) -> list[Any]:
        return [w for workers in self._by_node.values() for w in workers]

    def close(self) -> None:
        self._kill(self.handles())
        self._by_node.clear()

    @staticmethod
    def _kill(handles: list[Any]) -> None:
        for handle in handles:
            ray.kill(handle)
