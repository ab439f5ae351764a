"""One trial: a configuration from the search space evaluated on the validation split as a full eval.

The same function runs in-process (local executor) and inside a Ray worker.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from promptopt.data import Dataset, content_hash
from promptopt.engine import EvalSummary, ExperimentRole, Origin, Services, evaluate_config
from promptopt.errors import BudgetExceeded, EvalFailed
from promptopt.search_spaces import SearchSpace
from promptopt.secrets import scrub_secrets
from promptopt.spec import LoadedSpec


class TrialStatus(StrEnum):
    """How a trial's eval ended: ``complete`` (it has values), ``failed`` (the eval failed: never a score) or
    ``budget`` (the budget ran out during it, which stops the search)."""

    COMPLETE = "complete"
    FAILED = "failed"
    BUDGET = "budget"


class TrialJob(BaseModel):
    model_config = ConfigDict(frozen=True)
    number: int
    params: dict[str, Any]


class TrialOutcome(BaseModel):
    """What one trial's eval gave: its status, and the summary of a complete one."""

    model_config = ConfigDict(frozen=True)
    number: int
    state: TrialStatus
    config_hash: str
    experiment_id: str | None = None
    summary: EvalSummary | None = None
    error: str | None = None
    node: str | None = None
    calibration: dict[str, Any] | None = None  # a calibrated configuration's fitted label bias (LabelCalibration)

    def values(self, objectives: tuple[str, ...]) -> list[float]:
        """The trial's value for each objective: score, or what the configuration's task call costs (dollars)
        and takes (seconds) per row when it really runs, whether or not this eval was served from the cache.

        Raises:
            ValueError: an objective has no value (see :meth:`missing`); such a trial is failed, not told.
        """
        values = [v for v in (self._value(name) for name in objectives) if v is not None]
        if len(values) < len(objectives):
            raise ValueError(f"trial {self.number} has no value for {', '.join(self.missing(objectives))}")
        return values

    def missing(self, objectives: tuple[str, ...]) -> list[str]:
        """The objectives this outcome has no value for (e.g. latency, when every row came from cache entries
        written without it)."""
        return [name for name in objectives if self._value(name) is None]

    def _value(self, name: str) -> float | None:
        s = self.summary
        if s is None:
            return None
        return {"score": s.objective, "cost": s.cost_per_row_usd, "latency": s.latency_per_row_s}[name]


class TrialContext(BaseModel):
    """Everything a worker needs besides its own connections (picklable)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    loaded: Any  # LoadedSpec (a frozen dataclass)
    dataset: Dataset
    space: dict[str, Any]
    run_id: str
    objectives: tuple[str, ...] = ("score",)


async def run_trial(ctx: TrialContext, job: TrialJob, *, services: Services, node: str | None = None) -> TrialOutcome:
    """Evaluate ``job``'s configuration on the validation split on ``services`` (the run's budget and the
    limit shared by the trials running beside it); a failed eval is an outcome, never an exception."""
    try:
        config = SearchSpace.from_json(ctx.space).config(job.params)
    except Exception as exc:  # params the space cannot express: the trial fails, the batch goes on
        return failed_outcome(ctx, job, f"its configuration could not be built: {type(exc).__name__}: {exc}")
    loaded: LoadedSpec = ctx.loaded
    origin = Origin(run_id=ctx.run_id, role=ExperimentRole.TRIAL, trial=job.number)
    try:
        result = await evaluate_config(
            loaded, ctx.dataset, config, split="validation", services=services, origin=origin
        )
    except (BudgetExceeded, EvalFailed) as exc:
        state = TrialStatus.BUDGET if isinstance(exc, BudgetExceeded) else TrialStatus.FAILED
        return TrialOutcome(
            number=job.number,
            state=state,
            config_hash=config.hash,
            error=str(exc),
            experiment_id=exc.experiment_id,
            node=node,
        )
    outcome = TrialOutcome(
        number=job.number,
        state=TrialStatus.COMPLETE,
        config_hash=config.hash,
        experiment_id=result.experiment_id,
        summary=result.summary,
        node=node,
        calibration=result.calibration.model_dump(mode="json") if result.calibration is not None else None,
    )
    missing = outcome.missing(tuple(dict.fromkeys(("score", *ctx.objectives))))
    if missing:
        return outcome.model_copy(update={"state": TrialStatus.FAILED, "error": _no_value(missing)})
    return outcome


def failed_outcome(ctx: TrialContext, job: TrialJob, error: str, *, node: str | None = None) -> TrialOutcome:
    """The failed outcome of ``job`` when its trial could not run to an eval result (``error`` says why, with
    secrets scrubbed). Its config hash is the configuration's, or of its params when the space cannot build it."""
    try:
        config_hash = SearchSpace.from_json(ctx.space).config(job.params).hash
    except Exception:
        config_hash = content_hash({"unbuildable params": job.params})
    return TrialOutcome(
        number=job.number,
        state=TrialStatus.FAILED,
        config_hash=config_hash,
        error=scrub_secrets(error)[:2000],
        node=node,
    )


def _no_value(missing: list[str]) -> str:
    if "score" in missing:
        return "no row could be scored"
    # A cache entry written without a latency says nothing of how long the call takes: not 0, and not a guess.
    return (
        f"no row has a known {' or '.join(missing)}: every response came from cache entries (or rows "
        f"recorded) without it; run again with a fresh --cache, or --no-cache, to measure it"
    )
