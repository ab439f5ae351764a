"""Scheduled re-optimization: a prompt's search runs again on fresh production logs with feedback, warm
started from the production version and the previous run's winners, and promotes through the registry's
gate. Schedules, their leases and their run history live in the store.

Example:
    >>> from promptopt.schedules import Scheduler, Schedules
    >>> Schedules(store).add(
    ...     "triage-nightly", "triage.yaml", prompt="support-triage", every_s=86400, min_new_feedback=50
    ... )  # doctest: +SKIP
    >>> Scheduler(store).tick()  # doctest: +SKIP
"""

from promptopt.schedules._drift import check_drift, drift_alert, mean_ci
from promptopt.schedules._events import (
    DriftDetected,
    JobDone,
    JobResumed,
    JobStarted,
    OnScheduleEvent,
    ScheduleEvent,
    SearchProgress,
    WarmStarted,
)
from promptopt.schedules._job import Job, JobOutcome
from promptopt.schedules._lease import LeaseKeeper
from promptopt.schedules._runner import DEFAULT_LEASE_S, LeaseLost, Scheduler
from promptopt.schedules._store import Schedules
from promptopt.schedules._values import DriftAlert, JobReport, RunStatus, Schedule, ScheduleRun, ScheduleSettings
from promptopt.schedules._warm import WarmStart, derive_spec, params_for, prepare_warm_start, previous_best, rebase

__all__ = [
    "DEFAULT_LEASE_S",
    "DriftAlert",
    "DriftDetected",
    "Job",
    "JobDone",
    "JobResumed",
    "JobStarted",
    "JobOutcome",
    "JobReport",
    "LeaseKeeper",
    "LeaseLost",
    "OnScheduleEvent",
    "RunStatus",
    "ScheduleEvent",
    "SearchProgress",
    "WarmStarted",
    "Schedule",
    "ScheduleRun",
    "ScheduleSettings",
    "Scheduler",
    "Schedules",
    "WarmStart",
    "check_drift",
    "derive_spec",
    "drift_alert",
    "mean_ci",
    "params_for",
    "prepare_warm_start",
    "previous_best",
    "rebase",
]
