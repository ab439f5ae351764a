"""One trial: a configuration from the search space evaluated on the validation split as a full eval.

The same function runs in-process (local executor) and inside a Ray worker.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from promptopt.api import evaluate_config
from promptopt.cache import ResponseCache
from promptopt.data import Dataset
from promptopt.engine import Budget, CallLimiter, EvalSummary
from promptopt.errors import BudgetExceeded, EvalFailed
from promptopt.models._base import ModelBackend
from promptopt.search_spaces import SearchSpace
from promptopt.spec import LoadedSpec


class TrialJob(BaseModel):
    model_config = ConfigDict(frozen=True)
    number: int
    params: dict[str, Any]


class TrialOutcome(BaseModel):
    """``state`` is complete, failed (the eval failed: never a score) or budget (stopped by the budget)."""

    model_config = ConfigDict(frozen=True)
    number: int
    state: str
    config_hash: str
    experiment_id: str | None = None
    summary: EvalSummary | None = None
    error: str | None = None
    node: str | None = None

    def values(self, objectives: tuple[str, ...]) -> list[float]:
        assert self.summary is not None and self.summary.objective is not None
        out = []
        for name in objectives:
            if name == "score":
                out.append(self.summary.objective)
            elif name == "cost":
                out.append(self.summary.cost_usd)
            else:  # latency
                out.append(self.summary.mean_latency_s or 0.0)
        return out


class TrialContext(BaseModel):
    """Everything a worker needs besides its own connections (picklable)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    loaded: Any  # LoadedSpec (a frozen dataclass)
    dataset: Dataset
    space: dict[str, Any]
    run_id: str


async def run_trial(ctx: TrialContext, job: TrialJob, *, backend: ModelBackend, cache: ResponseCache,
                    store: Any, budget: Budget | None, limiter: CallLimiter | None = None,
                    node: str | None = None) -> TrialOutcome:
    space = SearchSpace.from_json(ctx.space)
    config = space.config(job.params)
    loaded: LoadedSpec = ctx.loaded
    try:
        result = await evaluate_config(loaded, ctx.dataset, config, split="validation", backend=backend,
                                       cache=cache, store=store, budget=budget, run_id=ctx.run_id,
                                       trial_number=job.number, limiter=limiter)
    except BudgetExceeded as exc:
        return TrialOutcome(number=job.number, state="budget", config_hash=config.hash, error=str(exc),
                            experiment_id=getattr(exc, "experiment_id", None), node=node)
    except EvalFailed as exc:
        return TrialOutcome(number=job.number, state="failed", config_hash=config.hash, error=str(exc),
                            experiment_id=getattr(exc, "experiment_id", None), node=node)
    state = "complete" if result.summary.objective is not None else "failed"
    return TrialOutcome(number=job.number, state=state, config_hash=config.hash,
                        experiment_id=result.experiment_id, summary=result.summary, node=node,
                        error=None if state == "complete" else "no row could be scored")
