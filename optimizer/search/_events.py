"""What a run reports while it works: one frozen class per event, handed to the run's ``on_event``.

A consumer matches on the class (``match event: case TrialFinished(score=s): ...``); nothing is named by
a string or carried in a dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from promptopt.search._trial import TrialStatus

if TYPE_CHECKING:
    from promptopt.registry import PromotionDecision


class StopReason(StrEnum):
    """Why the search loop stopped (``RunResult.stopped_by``)."""

    TRIALS = "trials"  # the trial budget is used
    WALL_TIME = "wall_s"  # the wall-time budget ran out before a new batch
    BUDGET = "budget"  # a trial ran out of model calls or dollars
    GRID_EXHAUSTED = "grid_exhausted"  # the grid sampler has no configuration left


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    resumed: bool


@dataclass(frozen=True)
class PrepassStarted:
    """The baseline runs on a train sample (bootstrapped demos, mistakes that ground proposals)."""


@dataclass(frozen=True)
class SpaceBuilt:
    dimensions: tuple[str, ...]
    proposals: tuple[str, ...]


@dataclass(frozen=True)
class FineTuneTrained:
    """A ``search.fine_tune`` job's model is ready: trained now, or found again by its hash (``reused``)."""

    job: str
    model: str
    rows: int
    train_s: float
    reused: bool


@dataclass(frozen=True)
class TrialsRecovered:
    """Trials a killed process left running, queued again."""

    trials: int


@dataclass(frozen=True)
class TrialFinished:
    number: int
    status: TrialStatus
    score: float | None = None
    error: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class InstructionsEvolved:
    """A generation of the ``evolve`` search: the children written from ``parent_trial``'s mistakes on train
    cases, and why the proposals left out were rejected; ``prompt``: a code task's prompt whose instruction
    grew (``None`` for a one-prompt task)."""

    generation: int
    parent_trial: int
    children: tuple[str, ...]
    rejected: tuple[str, ...]
    prompt: str | None = None


@dataclass(frozen=True)
class TestEvalStarted:
    """A shortlisted trial's configuration is evaluated on the held-out test split."""

    trial: int


@dataclass(frozen=True)
class PromotionDecided:
    decision: PromotionDecision


RunEvent = (
    RunStarted
    | PrepassStarted
    | SpaceBuilt
    | FineTuneTrained
    | TrialsRecovered
    | TrialFinished
    | InstructionsEvolved
    | TestEvalStarted
    | PromotionDecided
)
OnEvent = Callable[[RunEvent], None]


def ignore(event: RunEvent) -> None:
    """The default ``on_event``."""
