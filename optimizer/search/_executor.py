"""The trial-executor seam: runs a batch of trials at once. Local (asyncio, this process) here; Ray in
``promptopt.workers``."""

from __future__ import annotations

import abc
import asyncio

from promptopt.engine import LocalLimiter, Services
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome, failed_outcome, run_trial


class TrialExecutor(abc.ABC):
    """Contract: ``run_batch`` evaluates every job (concurrently where it can) and returns one outcome per
    job in the order given; a job's failure is an outcome with state failed or budget, never an exception.
    The budget is shared by every trial of the run; the per-model concurrency limit holds across trials.
    ``close`` may be called more than once.

    An executor is made by the run's ``executor_factory(services)``, with the run's search budget in
    ``services.budget``."""

    @abc.abstractmethod
    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]: ...

    def close(self) -> None:
        """Release workers; default does nothing."""


class LocalExecutor(TrialExecutor):
    """Trials as concurrent asyncio tasks in this process, on one set of services: one backend, cache, record
    store and budget, and one per-model limit of ``services.settings.concurrency`` calls for all of them
    (unless ``services`` brings its own limiter)."""

    def __init__(self, services: Services) -> None:
        self.services = (
            services if services.limiter else services.but(limiter=LocalLimiter(services.settings.concurrency))
        )

    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
        results = await asyncio.gather(
            *(run_trial(ctx, job, services=self.services, node="local") for job in jobs), return_exceptions=True
        )
        return [
            r if isinstance(r, TrialOutcome) else _raised(ctx, job, r) for job, r in zip(jobs, results, strict=True)
        ]


def _raised(ctx: TrialContext, job: TrialJob, exc: BaseException) -> TrialOutcome:
    if not isinstance(exc, Exception):  # cancellation and interrupts stop the run, they are not a trial's failure
        raise exc
    return failed_outcome(ctx, job, f"the trial raised {type(exc).__name__}: {exc}", node="local")
