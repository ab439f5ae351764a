"""Values of scheduled re-optimization: schedules, their runs, drift alerts and what one job did."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promptopt.search import SAMPLERS

RunStatus = Literal["running", "finished", "failed", "skipped", "abandoned", "lost_lease", "interrupted"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScheduleSettings(_Frozen):
    """How each run of a schedule searches (the spec's ``search``, ``budget`` and ``registry`` still apply)."""

    sampler: str = Field(default="auto", description=f"One of {SAMPLERS}.")
    seed: int = 0
    top_k: int = Field(default=2, ge=1, description="Best candidates tested beside the production version.")
    max_trials: int | None = Field(default=None, ge=1, description="Override the spec's budget.trials.")
    min_cases: int = Field(default=8, ge=3, description="Fewer logs with a reference than this: the run is skipped.")
    window_s: float | None = Field(default=None, gt=0, description="Only logs of the last window_s seconds.")
    warm_start: int = Field(default=2, ge=0, description="Best configurations of the previous run evaluated first.")

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        if value not in SAMPLERS:
            raise ValueError(f"must be one of {SAMPLERS}, not {value!r}")
        return value


class Schedule(_Frozen):
    """A re-optimization job of one prompt (the spec's ``task.name``).

    It is due when it is not paused, no scheduler holds its lease, ``every_s`` have passed since the last run
    started and ``min_new_feedback`` feedback entries arrived since then, or at once when the scheduler that
    ran it stopped renewing its lease (it died mid-job: the job is taken over).
    """

    id: str
    name: str
    prompt: str
    spec_path: str
    every_s: float = Field(gt=0)
    min_new_feedback: int = Field(ge=0)
    settings: ScheduleSettings
    paused: bool
    lease_owner: str | None
    lease_until: datetime | None
    runs: int = Field(ge=0)
    last_run_at: datetime | None
    last_status: str | None
    last_run_id: str | None
    created_at: datetime

    def leased(self, now: datetime) -> bool:
        """A scheduler holds the lease now."""
        return self.lease_until is not None and self.lease_until >= now

    def interrupted(self, now: datetime) -> bool:
        """A run was claimed and its lease ran out without a release: its scheduler died."""
        return self.lease_owner is not None and not self.leased(now)

    def next_run_at(self) -> datetime | None:
        """When the timer allows the next run (``None``: never ran, so now)."""
        return None if self.last_run_at is None else self.last_run_at + timedelta(seconds=self.every_s)


class DriftAlert(_Frozen):
    """The production version scores worse on fresh logs than its registered test score, by more than the
    95% confidence interval of the fresh score allows."""

    prompt: str
    version: int
    label: str
    registered_test_score: float
    fresh_score: float
    ci95: tuple[float, float]
    cases: int = Field(ge=1)

    @property
    def drop(self) -> float:
        return self.registered_test_score - self.fresh_score

    @property
    def message(self) -> str:
        lo, hi = self.ci95
        return (
            f"drift: {self.prompt} v{self.version} ({self.label}) scores {self.fresh_score:.3f} on "
            f"{self.cases} fresh cases (95% CI {lo:.3f}..{hi:.3f}), below its registered test score "
            f"{self.registered_test_score:.3f}"
        )


class ScheduleRun(_Frozen):
    """One run of a schedule, as recorded in its history."""

    id: int
    schedule_id: str
    owner: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    run_id: str | None = None
    dataset_file: str | None = None
    dataset_hash: str | None = None
    cases: int | None = None
    new_feedback: int | None = None
    promoted: bool | None = None
    promotion: dict[str, Any] | None = None
    drift: DriftAlert | None = None
    message: str | None = None


class JobReport(_Frozen):
    """What one scheduler did with one due schedule."""

    schedule: str
    history_id: int
    status: RunStatus
    run_id: str | None = None
    promoted: bool | None = None
    promotion: dict[str, Any] | None = None
    drift: DriftAlert | None = None
    message: str | None = None
