"""What a run returns: its candidates (distinct configurations that completed) and the result, immutable."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import optuna
from pydantic import BaseModel, ConfigDict

from promptopt.config import TaskConfig
from promptopt.registry import PromotionDecision
from promptopt.search._events import StopReason

if TYPE_CHECKING:
    from promptopt.search_spaces import SearchSpace


class Candidate(BaseModel):
    """A distinct configuration that completed, with the figures of its validation eval.

    ``cost_usd``, ``mean_latency_s`` and ``model_calls`` are what that eval paid (a cached response is free and
    instant: all 0 / ``None`` on a warm cache). ``cost_per_row_usd`` and ``latency_per_row_s`` are what the
    configuration's task call costs and takes per row when it really runs, cached or not: the figures the cost
    and latency objectives use (``None`` when unknown, e.g. in results recorded before they existed).
    """

    model_config = ConfigDict(frozen=True)
    trial: int
    config: dict[str, Any]
    description: str
    validation_score: float | None
    test_score: float | None = None
    confirmation_score: float | None = None  # on the confirmation slice, for a shortlisted candidate
    cost_usd: float = 0.0
    mean_latency_s: float | None = None
    model_calls: int = 0
    cost_per_row_usd: float | None = None
    latency_per_row_s: float | None = None
    experiment_id: str | None = None
    test_experiment_id: str | None = None
    node: str | None = None

    @classmethod
    def of_trial(cls, trial: optuna.trial.FrozenTrial, config: TaskConfig | None) -> Candidate:
        """The candidate of a completed trial (``config``: its configuration, ``None`` when unknown), with the
        figures of the eval summary the trial recorded."""
        s = trial.user_attrs.get("summary") or {}
        return cls(
            trial=trial.number,
            config={} if config is None else config.model_dump(mode="json", by_alias=True),
            description="" if config is None else config.describe(),
            validation_score=trial.values[0] if trial.values else None,
            cost_usd=s.get("cost_usd", 0.0),
            mean_latency_s=s.get("mean_latency_s"),
            model_calls=s.get("model_calls", 0),
            cost_per_row_usd=s.get("cost_per_row_usd"),
            latency_per_row_s=s.get("latency_per_row_s"),
            experiment_id=trial.user_attrs.get("experiment_id"),
            node=trial.user_attrs.get("node"),
        )


class InstructionPool(BaseModel):
    """Where a run's instruction candidates came from: how many of each source (``spec``, ``operator:<name>``,
    the proposer, ``reflect:cases`` ...), how many generations the ``evolve`` search wrote, and how many
    proposals were rejected for each reason (the texts are in the run's space and its report)."""

    model_config = ConfigDict(frozen=True)
    candidates: int
    generations: int = 0
    sources: dict[str, int]
    rejected: dict[str, int]

    @classmethod
    def of_space(cls, space: SearchSpace) -> InstructionPool | None:
        """The pool of ``space``'s instruction dimension, or of a code task's prompts together (``None``: the
        space has none)."""
        dims = [dim for _, dim in space.instruction_dimensions()]
        if not dims:
            return None
        return cls(
            candidates=sum(len(d.candidates) for d in dims),
            generations=sum(d.generations for d in dims),
            sources=dict(Counter(s for d in dims for s in d.sources)),
            rejected=dict(Counter(r.reason for d in dims for r in d.rejected)),
        )


class RunResult(BaseModel):
    """A finished run: its figures, the baseline and the winner (``best``, first of the leaderboard) with their
    held-out scores, the lift, and the promotion decision."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    status: str
    stopped_by: StopReason | None
    trials: int
    failed_trials: int
    model_calls: int
    cost_usd: float
    wall_s: float
    baseline: Candidate
    best: Candidate
    lift: float | None
    lift_ci95: tuple[float, float] | None
    p_value: float | None
    leaderboard: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...] = ()
    promotion: PromotionDecision | None = None
    instructions: InstructionPool | None = None

    @property
    def validation_test_gap(self) -> float | None:
        """The winner's validation score minus its test score (positive: it did worse on data the search never
        saw); ``None`` without both."""
        best = self.best
        if best.validation_score is None or best.test_score is None:
            return None
        return best.validation_score - best.test_score
