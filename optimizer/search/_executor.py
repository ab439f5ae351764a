"""The trial-executor seam: runs a batch of trials at once. Local (asyncio, this process) here; Ray in
``promptopt.workers``."""

from __future__ import annotations

import abc
import asyncio
from typing import Any

from promptopt.cache import ResponseCache
from promptopt.engine import Budget, LocalLimiter
from promptopt.models import ModelBackend
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome, run_trial


class TrialExecutor(abc.ABC):
    """Contract: ``run_batch`` evaluates every job (concurrently where it can) and returns one outcome per
    job in the order given; a job's failure is an outcome with state failed or budget, never an exception.
    ``budget`` is shared by every trial of the run; the per-model concurrency limit holds across trials."""

    @abc.abstractmethod
    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]: ...

    def close(self) -> None:
        """Release workers; default does nothing."""


class LocalExecutor(TrialExecutor):
    """Trials as concurrent asyncio tasks in this process, sharing one backend, cache, budget and limiter."""

    def __init__(self, *, backend: ModelBackend, cache: ResponseCache, store: Any, budget: Budget | None,
                 concurrency: int) -> None:
        self.backend, self.cache, self.store, self.budget = backend, cache, store, budget
        self.limiter = LocalLimiter(concurrency)

    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
        return list(await asyncio.gather(*(
            run_trial(ctx, job, backend=self.backend, cache=self.cache, store=self.store, budget=self.budget,
                      limiter=self.limiter, node="local") for job in jobs)))
