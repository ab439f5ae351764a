"""Schedules in the store, the lease that lets one scheduler at a time run a job, and the run history.

The lease is one conditional ``UPDATE`` of the schedule's row (``... WHERE runs = :seen AND (lease_until IS
NULL OR lease_until < :now)``): on PostgreSQL the row lock makes a second claimer wait and then find the
condition false; on SQLite the database write lock does the same. Whoever's ``UPDATE`` changed the row
holds the lease; nobody else can, until it is released or runs out.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import false, update
from sqlmodel import Session, col, select

from promptopt.errors import InputError, NotFound
from promptopt.names import is_prompt_name
from promptopt.schedules._values import DriftAlert, Schedule, ScheduleRun, ScheduleSettings
from promptopt.store import ScheduleRunTable, ScheduleTable, Store, utc, writer

_SOURCE = "schedule"


class Schedules:
    """Schedules of a :class:`~promptopt.store.Store`: add, list, pause, remove, lease and history.

    Contract: every method commits before it returns; :meth:`claim` succeeds for at most one caller per
    claimable state of a schedule, across threads, processes and machines sharing the store.
    """

    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._writer = writer(store.engine)

    # -- management ---------------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        spec_path: str,
        *,
        prompt: str,
        every_s: float,
        min_new_feedback: int = 0,
        settings: ScheduleSettings = ScheduleSettings(),
    ) -> Schedule:
        """Add a schedule (not paused; due at once if feedback suffices).

        Raises:
            InputError: a bad name, interval or threshold, or a schedule with this name exists.
        """
        if not is_prompt_name(name):  # a schedule is named like the prompt it re-optimizes
            raise InputError(_SOURCE, "name", f"{name!r} is not a name: letters, digits, '_', '.', '-'")
        if not every_s > 0:
            raise InputError(_SOURCE, "every_s", f"the interval must be positive, not {every_s}")
        if min_new_feedback < 0:
            raise InputError(_SOURCE, "min_new_feedback", f"must be >= 0, not {min_new_feedback}")
        row = ScheduleTable(
            id=uuid.uuid4().hex,
            name=name,
            prompt=prompt,
            spec_path=spec_path,
            every_s=every_s,
            min_new_feedback=min_new_feedback,
            settings=settings.model_dump(mode="json"),
            created_at=datetime.now(UTC),
        )
        with Session(self._writer) as session, session.begin():
            if session.exec(select(ScheduleTable).where(ScheduleTable.name == name)).first() is not None:
                raise InputError(
                    _SOURCE, "name", f"a schedule named {name!r} exists; remove it first or pick another name"
                )
            session.add(row)
            session.flush()
            return _schedule(row)

    def get(self, name: str) -> Schedule:
        with Session(self._engine) as session:
            return _schedule(_row(session, name))

    def list(self) -> list[Schedule]:
        with Session(self._engine) as session:
            return [_schedule(r) for r in session.exec(select(ScheduleTable).order_by(col(ScheduleTable.name)))]

    def set_paused(self, name: str, paused: bool) -> Schedule:
        """Pause or resume; a run in progress finishes, a paused schedule is never claimed."""
        with Session(self._writer) as session, session.begin():
            row = _row(session, name)
            row.paused = paused
            session.flush()
            return _schedule(row)

    def remove(self, name: str) -> None:
        """Remove the schedule and its history (a run in progress finishes, but records nothing more)."""
        with Session(self._writer) as session, session.begin():
            row = _row(session, name)
            for run in session.exec(select(ScheduleRunTable).where(ScheduleRunTable.schedule_id == row.id)):
                session.delete(run)
            session.delete(row)

    def history(self, name: str, *, limit: int = 50) -> builtins.list[ScheduleRun]:
        """The schedule's runs, newest first."""
        with Session(self._engine) as session:
            schedule_id = _row(session, name).id
            rows = session.exec(
                select(ScheduleRunTable)
                .where(ScheduleRunTable.schedule_id == schedule_id)
                .order_by(col(ScheduleRunTable.id).desc())
                .limit(limit)
            )
            return [_run(r) for r in rows]

    # -- the lease ----------------------------------------------------------------------------------------
    def claim(self, schedule: Schedule, *, owner: str, lease_s: float, now: datetime | None = None) -> bool:
        """Take the lease of ``schedule`` for ``lease_s`` seconds if it is still as read: not paused, not
        claimed since (``runs`` unchanged) and its lease free or run out. ``True`` for exactly one claimer."""
        now = now or datetime.now(UTC)
        stmt = (
            update(ScheduleTable)
            .where(
                col(ScheduleTable.id) == schedule.id,
                col(ScheduleTable.runs) == schedule.runs,
                col(ScheduleTable.paused) == false(),
                col(ScheduleTable.lease_until).is_(None) | (col(ScheduleTable.lease_until) < now),
            )
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s), runs=schedule.runs + 1)
        )
        return self._update(stmt)

    def renew(self, schedule_id: str, *, owner: str, lease_s: float) -> bool:
        """Extend a held lease; ``False`` when another scheduler has taken the job over."""
        stmt = (
            update(ScheduleTable)
            .where(col(ScheduleTable.id) == schedule_id, col(ScheduleTable.lease_owner) == owner)
            .values(lease_until=datetime.now(UTC) + timedelta(seconds=lease_s))
        )
        return self._update(stmt)

    def release(self, schedule_id: str, *, owner: str, started_at: datetime, status: str, run_id: str | None) -> bool:
        """End a held lease and record the run on the schedule; ``False`` if the lease was lost meanwhile."""
        stmt = (
            update(ScheduleTable)
            .where(col(ScheduleTable.id) == schedule_id, col(ScheduleTable.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None, last_run_at=started_at, last_status=status, last_run_id=run_id)
        )
        return self._update(stmt)

    def expire(self, schedule_id: str, *, owner: str) -> bool:
        """Give a held lease up at once, leaving the job to be taken over (a scheduler stopped mid-job)."""
        stmt = (
            update(ScheduleTable)
            .where(col(ScheduleTable.id) == schedule_id, col(ScheduleTable.lease_owner) == owner)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        return self._update(stmt)

    def _update(self, stmt: Any) -> bool:
        with self._writer.begin() as connection:
            return bool(connection.execute(stmt).rowcount == 1)

    # -- history ------------------------------------------------------------------------------------------
    def begin_run(self, schedule_id: str, *, owner: str, started_at: datetime, new_feedback: int) -> int:
        with Session(self._writer) as session, session.begin():
            row = ScheduleRunTable(
                schedule_id=schedule_id, owner=owner, status="running", started_at=started_at, new_feedback=new_feedback
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

    def update_run(self, history_id: int, /, **fields: Any) -> None:
        """Set fields of a history entry (``drift`` as a :class:`DriftAlert`)."""
        if isinstance(fields.get("drift"), DriftAlert):
            fields["drift"] = fields["drift"].model_dump(mode="json")
        with Session(self._writer) as session, session.begin():
            row = session.get(ScheduleRunTable, history_id)
            if row is None:  # the schedule was removed meanwhile
                return
            for key, value in fields.items():
                setattr(row, key, value)

    def abandon_running(self, schedule_id: str, *, by: str) -> ScheduleRun | None:
        """Mark runs a dead scheduler left ``running`` as ``abandoned``; returns the newest of them (the new
        owner continues with its dataset, so the search run resumes instead of starting over)."""
        with Session(self._writer) as session, session.begin():
            rows = session.exec(
                select(ScheduleRunTable)
                .where(ScheduleRunTable.schedule_id == schedule_id, ScheduleRunTable.status == "running")
                .order_by(col(ScheduleRunTable.id).desc())
            ).all()
            for row in rows:
                row.status, row.finished_at = "abandoned", datetime.now(UTC)
                row.message = f"{row.owner} stopped renewing its lease; taken over by {by}"
            session.flush()
            return _run(rows[0]) if rows else None


def _row(session: Session, name: str) -> ScheduleTable:
    row = session.exec(select(ScheduleTable).where(ScheduleTable.name == name)).first()
    if row is None:
        raise NotFound(f"no schedule named {name!r} (`optimize schedule list` shows them)")
    return row


def _at(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _schedule(row: ScheduleTable) -> Schedule:
    return Schedule(
        id=row.id,
        name=row.name,
        prompt=row.prompt,
        spec_path=row.spec_path,
        every_s=row.every_s,
        min_new_feedback=row.min_new_feedback,
        settings=ScheduleSettings.model_validate(row.settings),
        paused=row.paused,
        lease_owner=row.lease_owner,
        lease_until=_at(row.lease_until),
        runs=row.runs,
        last_run_at=_at(row.last_run_at),
        last_status=row.last_status,
        last_run_id=row.last_run_id,
        created_at=utc(row.created_at),
    )


def _run(row: ScheduleRunTable) -> ScheduleRun:
    assert row.id is not None
    return ScheduleRun(
        id=row.id,
        schedule_id=row.schedule_id,
        owner=row.owner,
        status=row.status,
        started_at=utc(row.started_at),
        finished_at=_at(row.finished_at),
        run_id=row.run_id,
        dataset_file=row.dataset_file,
        dataset_hash=row.dataset_hash,
        cases=row.cases,
        new_feedback=row.new_feedback,
        promoted=row.promoted,
        promotion=row.promotion,
        drift=None if row.drift is None else DriftAlert.model_validate(row.drift),
        message=row.message,
    )
