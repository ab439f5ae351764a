"""What an eval runs on, as one value: the model backend, the response cache, where records go, the eval
settings, and the run's budget and per-model limit. The engine, the search and the Ray workers pass it as
one argument instead of threading six through every layer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from promptopt.cache import NullCache, ResponseCache
from promptopt.engine._limits import Budget, CallLimiter
from promptopt.engine._result import EvalSummary, RowResult
from promptopt.models import ModelBackend
from promptopt.spec import EvalSettings


class ExperimentRole(StrEnum):
    """Why an experiment exists. Stored on the experiment (column ``role``), so readers never decode a
    trial number.

    * ``eval``: a standalone eval (``optimize eval``, the CI gate, ``evaluate_spec``).
    * ``prepass``: a run's baseline on a train sample, which bootstraps demos and grounds proposals.
    * ``trial``: a search trial on the validation split.
    * ``confirm``: a shortlisted trial's configuration on the confirmation slice (train cases the search never
      saw), which picks the winner before the verdict.
    * ``reflection``: a trial's configuration on a sample of train cases, whose mistakes write new
      instructions in the ``evolve`` search.
    * ``verdict``: a shortlisted trial's configuration on the test split.
    * ``incumbent``: a configuration the promotion gate evaluated again on the test split (the registry's
      current version, or the spec's baseline for a new prompt, and the candidate beside it).
    """

    EVAL = "eval"
    PREPASS = "prepass"
    TRIAL = "trial"
    CONFIRM = "confirm"
    REFLECTION = "reflection"
    VERDICT = "verdict"
    INCUMBENT = "incumbent"


_TRIAL_ROLES = (ExperimentRole.TRIAL, ExperimentRole.CONFIRM, ExperimentRole.REFLECTION, ExperimentRole.VERDICT)


@dataclass(frozen=True)
class Origin:
    """Where an experiment belongs: its run (``None`` outside a run), its role and, for trial and verdict
    evals, the trial's number.

    Raises:
        ValueError: a run role without a run, or a trial/verdict role without a trial number.
    """

    run_id: str | None = None
    role: ExperimentRole = ExperimentRole.EVAL
    trial: int | None = None

    def __post_init__(self) -> None:
        if self.role is not ExperimentRole.EVAL and self.run_id is None:
            raise ValueError(f"a {self.role} experiment belongs to a run: run_id is required")
        if self.role in _TRIAL_ROLES and self.trial is None:
            raise ValueError(f"a {self.role} experiment needs the number of its trial")


class RecordSink(Protocol):
    """What the engine needs of the store (``promptopt.store.Store`` satisfies it)."""

    def begin_experiment(
        self,
        *,
        key: str,
        name: str,
        config: dict[str, Any],
        config_hash: str,
        model: str,
        split: str,
        dataset_hash: str,
        run_id: str | None = None,
        trial_number: int | None = None,
        role: ExperimentRole = ExperimentRole.EVAL,
    ) -> tuple[str, list[RowResult]]: ...

    def add_rows(self, experiment_id: str, rows: list[RowResult]) -> None: ...

    def finish_experiment(
        self, experiment_id: str, summary: EvalSummary, *, status: str = ..., error_message: str | None = ...
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Services:
    """The services of an eval. ``records`` ``None`` keeps results in memory only; ``budget`` ``None`` is
    unlimited; ``limiter`` ``None`` gives each evaluator its own limit of ``settings.concurrency``."""

    backend: ModelBackend
    cache: ResponseCache = field(default_factory=NullCache)
    records: RecordSink | None = None
    settings: EvalSettings = field(default_factory=EvalSettings)
    budget: Budget | None = None
    limiter: CallLimiter | None = None

    def but(self, **changes: Any) -> Services:
        """A copy with some services replaced, e.g. ``services.but(budget=verdict_budget)``."""
        return dataclasses.replace(self, **changes)
