"""Runs in the store: begin (or resume), save the search space, usage so far, finish, read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from promptopt.errors import InputError, NotFound
from promptopt.store._engine import lock
from promptopt.store._records import utc
from promptopt.store._run_tables import RunTable
from promptopt.store._tables import ExperimentTable, RowTable

_RUN_LOCK_NAMESPACE = 0x5255  # advisory-lock namespace of run keys ("RU")


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    key: str
    name: str
    status: str
    spec: dict[str, Any]
    settings: dict[str, Any]
    dataset_hash: str
    space: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    created_at: datetime
    finished_at: datetime | None = None
    error_message: str | None = None
    resumed: bool = False
    space_calls: int = 0  # paid to build (and grow) the space outside any eval: instruction proposals
    space_usd: float = 0.0


def _record(table: RunTable, resumed: bool = False) -> RunRecord:
    return RunRecord(
        id=table.id,
        key=table.key,
        name=table.name,
        status=table.status,
        spec=table.spec,
        settings=table.settings,
        dataset_hash=table.dataset_hash,
        space=table.space,
        space_calls=table.space_calls,
        space_usd=table.space_usd,
        result=table.result,
        created_at=utc(table.created_at),
        finished_at=None if table.finished_at is None else utc(table.finished_at),
        error_message=table.error_message,
        resumed=resumed,
    )


class RunsMixin:
    """Run methods of :class:`promptopt.store.Store` (same engine, same contract)."""

    _engine: Engine
    _writer: Engine

    def begin_run(
        self,
        *,
        key: str,
        name: str,
        spec: dict[str, Any],
        settings: dict[str, Any],
        dataset_hash: str,
        resume_id: str | None = None,
    ) -> RunRecord:
        """Resume ``resume_id``, or the running run with ``key`` (a killed run started again with the same
        command), or start a new one.

        Raises:
            InputError: ``resume_id`` names no run, a finished run, or a run of another spec or data.
        """
        with Session(self._writer) as session, session.begin():
            lock(session.connection(), _RUN_LOCK_NAMESPACE, key)
            if resume_id is not None:
                run = _find_run(session, resume_id)
                if run.status != "running":
                    raise InputError(
                        "--resume",
                        "run_id",
                        f"run {run.id} is {run.status}; only a running (interrupted) run can be resumed",
                    )
                if run.key != key:
                    raise InputError(
                        "--resume",
                        "run_id",
                        f"run {run.id} was started from another spec, "
                        "dataset, sampler or seed; resume it with the same command",
                    )
                return _record(run, resumed=True)
            running = session.exec(
                select(RunTable)
                .where(RunTable.key == key, RunTable.status == "running")
                .order_by(col(RunTable.created_at).desc())
            ).first()
            if running is not None:
                return _record(running, resumed=True)
            run = RunTable(
                id=uuid.uuid4().hex,
                key=key,
                name=name,
                status="running",
                spec=spec,
                settings=settings,
                dataset_hash=dataset_hash,
                created_at=datetime.now(UTC),
            )
            session.add(run)
            session.flush()
            return _record(run)

    def save_run_space(
        self,
        run_id: str,
        space: dict[str, Any],
        *,
        calls: int | None = None,
        usd: float | None = None,
        more_calls: int = 0,
        more_usd: float = 0.0,
    ) -> None:
        """Keep the search space built for the run, so that a resumed run searches the same space, and the
        calls and dollars paid to build it outside any eval (proposals; ``None`` keeps what is recorded, and
        ``more_calls``/``more_usd`` add to it: a grown space's new proposals), so that a resumed run's budget
        and its result count them."""
        with Session(self._writer) as session, session.begin():
            run = _find_run(session, run_id)
            run.space = space
            if calls is not None:
                run.space_calls = calls
            if usd is not None:
                run.space_usd = usd
            run.space_calls += more_calls
            run.space_usd += more_usd

    def run_usage(self, run_id: str) -> tuple[int, float]:
        """Model calls and dollars spent by the run so far: task and judge calls of its evals (killed evals
        included, from their recorded rows) and the calls that built its space (proposals)."""
        with Session(self._engine) as session:
            run = _find_run(session, run_id)
            calls, usd = run.space_calls, run.space_usd
            experiments = session.exec(select(ExperimentTable).where(ExperimentTable.run_id == run.id)).all()
            for exp in experiments:
                if exp.summary is not None:
                    calls += int(exp.summary.get("model_calls", 0)) + int(exp.summary.get("scorer_calls", 0))
                    usd += float(exp.summary.get("cost_usd", 0.0))
                    continue
                # A row whose task call was a cache hit may still have paid its judge.
                paid = or_(col(RowTable.cache_hit).is_(False), col(RowTable.scorer_calls) > 0)
                for r in session.exec(select(RowTable).where(RowTable.experiment_id == exp.id, paid)).all():
                    calls += (not r.cache_hit and r.output is not None) + r.scorer_calls
                    usd += r.task_cost_usd + r.scorer_cost_usd
        return calls, usd

    def finish_run(
        self, run_id: str, *, status: str, result: dict[str, Any] | None = None, error_message: str | None = None
    ) -> None:
        with Session(self._writer) as session, session.begin():
            run = _find_run(session, run_id)
            run.status, run.result, run.error_message = status, result, error_message
            run.finished_at = datetime.now(UTC)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix (at least 6 characters)."""
        with Session(self._engine) as session:
            return _record(_find_run(session, run_id))

    def list_runs(self, *, name: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = select(RunTable)
        if name is not None:
            query = query.where(RunTable.name == name)
        query = query.order_by(col(RunTable.created_at).desc()).limit(limit)
        with Session(self._engine) as session:
            return [_record(r) for r in session.exec(query)]


def _find_run(session: Session, run_id: str) -> RunTable:
    wanted = run_id.strip().lower()
    if len(wanted) < 6:
        raise NotFound(f"no run {run_id!r}: give the id or at least 6 of its first characters")
    matches = session.exec(select(RunTable).where(col(RunTable.id).startswith(wanted, autoescape=True)).limit(2)).all()
    if len(matches) != 1:
        raise NotFound(f"no run {run_id!r}" if not matches else f"run id prefix {run_id!r} is ambiguous")
    return matches[0]
