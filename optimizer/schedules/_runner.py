"""The scheduler: finds due schedules, claims each with a lease, runs it, records the outcome, releases."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from promptopt.cache import ResponseCache
from promptopt.errors import OptimizeError
from promptopt.logs import LogStore
from promptopt.models import ModelBackend
from promptopt.schedules._events import JobDone, JobStarted, OnScheduleEvent, ScheduleEvent, WarmStarted, ignore
from promptopt.schedules._job import Job, JobOutcome
from promptopt.schedules._lease import LeaseKeeper
from promptopt.schedules._store import Schedules
from promptopt.schedules._values import JobReport, Schedule, ScheduleRun
from promptopt.secrets import scrub_secrets
from promptopt.store import Store

log = logging.getLogger("promptopt.schedules")
DEFAULT_LEASE_S = 300.0


class LeaseLost(OptimizeError):
    """Another scheduler took the job over (this one could not renew its lease in time)."""


class Scheduler:
    """Runs the due schedules of a store. Any number of schedulers (threads, processes, machines) may share
    one store: each job is claimed with a lease, so it runs once; the lease is renewed while the job runs,
    and a job whose scheduler died is taken over once its lease has run out (continuing its search run).

    Example:
        >>> Scheduler(get_store(), backend=get_backend()).tick()  # doctest: +SKIP
        >>> Scheduler(get_store()).run_forever(poll_s=60)  # doctest: +SKIP

    Args:
        store: Where logs, schedules, runs and the registry live.
        backend: Model backend of the searches (default: the litellm backend).
        cache: Response cache (default: ``$OPTIMIZE_CACHE`` or ``./.optimize/cache``).
        work_dir: Where datasets exported from logs and derived specs are written, per schedule.
        lease_s: Length of a lease; it is renewed every third of it while a job runs.
        owner: This scheduler's name in leases and history (default: host, pid and a random suffix).
        on_event: Callback for progress (``promptopt.schedules.ScheduleEvent``): a job started, resumed, warm
            started, drifted or done, and the search run's own events wrapped in ``SearchProgress``.
    """

    def __init__(
        self,
        store: Store,
        *,
        backend: ModelBackend | None = None,
        cache: ResponseCache | None = None,
        work_dir: str | Path | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        owner: str | None = None,
        on_event: OnScheduleEvent = ignore,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, not {lease_s}")
        self.store, self.lease_s, self.on_event = store, lease_s, on_event
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.work_dir = Path(work_dir) if work_dir is not None else Path.cwd() / ".optimize" / "schedules"
        self.schedules, self.logs = Schedules(store), LogStore(store)
        self._backend, self._cache = backend, cache

    def due(self, now: datetime | None = None) -> list[Schedule]:
        """Schedules a tick would try to claim now, by name."""
        now = now or datetime.now(UTC)
        return [s for s in self.schedules.list() if self._is_due(s, now)]

    def _is_due(self, schedule: Schedule, now: datetime) -> bool:
        if schedule.paused or schedule.leased(now):
            return False
        if schedule.interrupted(now):
            return True  # its scheduler died mid-job: take it over now
        next_at = schedule.next_run_at()
        if next_at is not None and now < next_at:
            return False
        return (
            schedule.min_new_feedback == 0
            or self.logs.new_feedback(schedule.prompt, schedule.last_run_at) >= schedule.min_new_feedback
        )

    def tick(self) -> list[JobReport]:
        """Run every due schedule once, one after another (for cron or CI); what each claimed job did."""
        reports = []
        for schedule in self.due():
            report = self.run(schedule)
            if report is not None:
                reports.append(report)
        return reports

    def run_forever(self, *, poll_s: float = 60.0, stop: threading.Event | None = None) -> None:
        """Tick every ``poll_s`` seconds until ``stop`` is set (or the process is interrupted)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.tick()
            except OptimizeError as exc:
                log.error("scheduler tick failed: %s", scrub_secrets(str(exc)))
            except Exception as exc:  # the store is down, say: the daemon keeps going and tries again
                log.exception("scheduler tick failed: %s", scrub_secrets(str(exc)))
            stop.wait(poll_s)

    def run(self, schedule: Schedule) -> JobReport | None:
        """Claim ``schedule`` (as read) and run it; ``None`` when another scheduler claimed it first."""
        started = datetime.now(UTC)
        if not self.schedules.claim(schedule, owner=self.owner, lease_s=self.lease_s, now=started):
            return None
        previous = self.schedules.abandon_running(schedule.id, by=self.owner)
        new_feedback = self.logs.new_feedback(schedule.prompt, schedule.last_run_at)
        history_id = self.schedules.begin_run(
            schedule.id, owner=self.owner, started_at=started, new_feedback=new_feedback
        )
        self.on_event(JobStarted(schedule.name, history_id, taken_over=previous is not None, new_feedback=new_feedback))
        state: dict[str, Any] = {"run_id": None}
        try:
            outcome = self._execute(schedule, history_id, previous, started, state)
        except KeyboardInterrupt:
            self.schedules.update_run(
                history_id,
                status="interrupted",
                finished_at=datetime.now(UTC),
                run_id=state["run_id"],
                message="the scheduler was interrupted",
            )
            self.schedules.expire(schedule.id, owner=self.owner)  # another scheduler may continue it at once
            raise
        except LeaseLost as exc:
            return self._finish(schedule, history_id, started, "lost_lease", state["run_id"], message=str(exc))
        except Exception as exc:  # a failed run is recorded and never moves a label
            message = scrub_secrets(f"{type(exc).__name__}: {exc}")[:4000]
            if state["run_id"] is not None:
                self._fail_search_run(state["run_id"], message)
            return self._finish(schedule, history_id, started, "failed", state["run_id"], message=message)
        return self._finish(schedule, history_id, started, outcome.status, outcome.run_id, outcome=outcome)

    def _execute(
        self,
        schedule: Schedule,
        history_id: int,
        previous: ScheduleRun | None,
        started: datetime,
        state: dict[str, Any],
    ) -> JobOutcome:
        def on_event(event: ScheduleEvent) -> None:
            if isinstance(event, WarmStarted):
                state["run_id"] = event.warm.run_id
                self.schedules.update_run(history_id, run_id=event.warm.run_id)
            self.on_event(event)

        def on_dataset(path: str, digest: str, cases: int) -> None:
            self.schedules.update_run(history_id, dataset_file=path, dataset_hash=digest, cases=cases)

        job = Job(
            store=self.store,
            schedule=schedule,
            backend=self.backend,
            cache=self.cache,
            work_dir=self.work_dir / schedule.name,
            now=started,
            resume=previous,
            on_event=on_event,
            on_dataset=on_dataset,
        )
        return asyncio.run(self._guarded(job, schedule))

    async def _guarded(self, job: Job, schedule: Schedule) -> JobOutcome:
        """Run ``job`` while a thread keeps the lease; if the lease is lost, the job is cancelled."""
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        assert task is not None

        def cancel() -> None:  # called from the lease thread
            loop.call_soon_threadsafe(task.cancel)

        keeper = LeaseKeeper(
            self.schedules, schedule.id, owner=self.owner, lease_s=self.lease_s, on_lost=cancel
        ).start()
        try:
            return await job.run()
        except asyncio.CancelledError:
            if keeper.lost:
                raise LeaseLost(
                    f"{self.owner} lost the lease of {schedule.name!r} to another scheduler, which continues the run"
                ) from None
            raise
        finally:
            keeper.stop()

    def _finish(
        self,
        schedule: Schedule,
        history_id: int,
        started: datetime,
        status: str,
        run_id: str | None,
        *,
        outcome: JobOutcome | None = None,
        message: str | None = None,
    ) -> JobReport:
        promotion = None if outcome is None else outcome.promotion
        promoted = None if promotion is None else bool(promotion.get("promoted"))
        drift = None if outcome is None else outcome.drift
        message = message or (None if outcome is None else outcome.message)
        fields: dict[str, Any] = {
            "status": status,
            "finished_at": datetime.now(UTC),
            "run_id": run_id,
            "promoted": promoted,
            "promotion": promotion,
            "drift": drift,
            "message": message,
        }
        if outcome is not None and outcome.cases is not None:
            fields["cases"] = outcome.cases
        self.schedules.update_run(history_id, **fields)
        if status != "lost_lease":
            self.schedules.release(schedule.id, owner=self.owner, started_at=started, status=status, run_id=run_id)
        report = JobReport(
            schedule=schedule.name,
            history_id=history_id,
            status=status,
            run_id=run_id,
            promoted=promoted,
            promotion=promotion,
            drift=drift,
            message=message,
        )
        self.on_event(JobDone(report))
        return report

    def _fail_search_run(self, run_id: str, message: str) -> None:
        try:
            if self.store.get_run(run_id).status == "running":
                self.store.finish_run(run_id, status="failed", error_message=message)
        except Exception as exc:  # recording the failure must not hide it
            log.warning("could not mark run %s failed: %s", run_id, scrub_secrets(str(exc)))

    @property
    def backend(self) -> ModelBackend:
        if self._backend is None:
            from promptopt.models import get_backend

            self._backend = get_backend()
        return self._backend

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            from promptopt.cache import get_cache

            self._cache = get_cache(None)
        return self._cache
