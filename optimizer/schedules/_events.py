"""What a scheduler reports while it works: frozen event classes, each naming its schedule. A search run's own
events (``promptopt.search.RunEvent``) reach the scheduler's ``on_event`` wrapped in :class:`SearchProgress`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from promptopt.search import RunEvent

if TYPE_CHECKING:
    from promptopt.schedules import DriftAlert, JobReport, WarmStart


@dataclass(frozen=True)
class JobStarted:
    schedule: str
    history_id: int
    taken_over: bool  # the previous scheduler of this job died; this one continues its run
    new_feedback: int


@dataclass(frozen=True)
class JobResumed:
    """A taken-over job continues on the logs file its run was using."""

    schedule: str
    dataset_file: str


@dataclass(frozen=True)
class WarmStarted:
    schedule: str
    warm: WarmStart


@dataclass(frozen=True)
class DriftDetected:
    schedule: str
    alert: DriftAlert


@dataclass(frozen=True)
class SearchProgress:
    schedule: str
    event: RunEvent


@dataclass(frozen=True)
class JobDone:
    report: JobReport


ScheduleEvent = JobStarted | JobResumed | WarmStarted | DriftDetected | SearchProgress | JobDone
OnScheduleEvent = Callable[[ScheduleEvent], None]


def ignore(event: ScheduleEvent) -> None:
    """The default ``on_event``."""
