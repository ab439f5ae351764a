"""The store: records of evals (experiments and their rows) in SQLite or PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import URL, Engine
from sqlmodel import Session, col, select

from promptopt.engine import EvalResult, EvalSummary, ExperimentRole, RowResult
from promptopt.errors import NotFound
from promptopt.store._engine import create_store_engine, insert_ignoring_duplicates, lock, writer
from promptopt.store._migrate import upgrade
from promptopt.store._records import ExperimentRecord, experiment_record, row_result, row_values
from promptopt.store._runs import RunsMixin
from promptopt.store._tables import ExperimentTable, RowTable
from promptopt.store._url import StoreUrl, ensure_sqlite_folder, resolve_url

MIN_PREFIX = 6
_ID = re.compile(r"[0-9a-f]{32}")
_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},32}}")
_KEY_LOCK_NAMESPACE = 0x4558  # advisory-lock namespace of experiment keys ("EX")
_ROW_KEY = ["experiment_id", "case_id", "repeat"]


def _new_id() -> str:
    return uuid.uuid4().hex


class Store(RunsMixin):
    """Experiments and their rows, behind one SQLAlchemy engine.

    Contract:

    * Thread-safe: one engine, a session per call. Several processes may share one database.
    * Every write is committed when the method returns, so a process killed afterwards loses nothing.
    * Returned values are immutable; a finished or failed experiment never changes again.
    * Reads accept an experiment id or a unique prefix of at least 6 characters (like git); writes take the
      full id that :meth:`begin_experiment` returned. Unknown ids raise :class:`promptopt.errors.NotFound`.

    Args:
        url: SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``); see :func:`get_store` for defaults.
            The schema is migrated to the newest revision on construction.
    """

    def __init__(self, url: str | URL) -> None:
        self._url = resolve_url(url)
        ensure_sqlite_folder(self._url)
        self._engine = create_store_engine(self._url)
        self._writer = writer(self._engine)
        try:
            upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> StoreUrl:
        """The database URL (SQLAlchemy form, e.g. ``postgresql+psycopg://``); it prints with the password
        masked, and its value connects."""
        return StoreUrl(self._url.render_as_string(hide_password=False))

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def dispose(self) -> None:
        """Close the pooled connections. The store can still be used afterwards (it reconnects)."""
        self._engine.dispose()

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
    ) -> tuple[str, list[RowResult]]:
        """Start an eval, or resume the one a killed process left running.

        If an experiment with ``key`` is still running, returns its id and the rows already recorded, so
        the caller evaluates only the rest. Otherwise creates a running experiment and returns ``(id, [])``.
        Concurrent calls with one key get one experiment.

        Raises:
            ValueError: a running experiment has this key but another config, split or dataset hash.
        """
        with Session(self._writer) as session, session.begin():
            lock(session.connection(), _KEY_LOCK_NAMESPACE, key)
            running = session.exec(
                select(ExperimentTable)
                .where(ExperimentTable.key == key, ExperimentTable.status == "running")
                .order_by(col(ExperimentTable.created_at).desc())
            ).first()
            if running is not None:
                _check_same_eval(running, config_hash=config_hash, split=split, dataset_hash=dataset_hash)
                return running.id, _rows(session, running.id)
            experiment = ExperimentTable(
                id=_new_id(),
                key=key,
                name=name,
                status="running",
                config=config,
                config_hash=config_hash,
                model=model,
                split=split,
                dataset_hash=dataset_hash,
                run_id=run_id,
                trial_number=trial_number,
                role=role.value,
                created_at=datetime.now(UTC),
            )
            session.add(experiment)
            return experiment.id, []

    def add_rows(self, experiment_id: str, rows: list[RowResult]) -> None:
        """Record rows of a running experiment in one transaction, committed on return.

        A row whose ``(case_id, repeat)`` is already recorded is skipped: the first record wins.

        Raises:
            NotFound: no experiment has this id.
            ValueError: the experiment is finished or failed.
        """
        with Session(self._writer) as session, session.begin():
            _running(session, experiment_id, for_update=False)
            if rows:
                dialect = session.get_bind().dialect.name
                stmt = insert_ignoring_duplicates(dialect, RowTable.__table__, _ROW_KEY)  # type: ignore[attr-defined]
                session.execute(stmt, [row_values(experiment_id, r) for r in rows])

    def finish_experiment(
        self, experiment_id: str, summary: EvalSummary, *, status: str = "finished", error_message: str | None = None
    ) -> None:
        """Close a running experiment with its summary; ``status="failed"`` records a failed eval.

        Raises:
            NotFound: no experiment has this id.
            ValueError: ``status`` is not "finished" or "failed", or the experiment is already closed.
        """
        if status not in ("finished", "failed"):
            raise ValueError(f"status must be 'finished' or 'failed', not {status!r}")
        with Session(self._writer) as session, session.begin():
            experiment = _running(session, experiment_id, for_update=True)
            experiment.status, experiment.error_message = status, error_message
            experiment.summary = summary.model_dump(mode="json")
            experiment.finished_at = datetime.now(UTC)

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        """The experiment with this id or unique id prefix.

        Raises:
            NotFound: no experiment, or several, match.
        """
        with Session(self._engine) as session:
            return experiment_record(_find(session, experiment_id))

    def get_rows(self, experiment_id: str) -> list[RowResult]:
        """The experiment's rows in the order they were recorded.

        Raises:
            NotFound: no experiment, or several, match.
        """
        with Session(self._engine) as session:
            return _rows(session, _find(session, experiment_id).id)

    def get_result(self, experiment_id: str) -> EvalResult:
        """A finished or failed experiment with all its rows.

        Raises:
            NotFound: no experiment, or several, match; or it is still running and has no result yet.
        """
        with Session(self._engine) as session:
            experiment = experiment_record(_find(session, experiment_id))
            if experiment.summary is None:
                raise NotFound(
                    f"experiment {experiment.id} is still running; it has a result once "
                    f"finish_experiment is called (or resume it with begin_experiment)"
                )
            return EvalResult(
                experiment_id=experiment.id,
                config_hash=experiment.config_hash,
                split=experiment.split,
                dataset_hash=experiment.dataset_hash,
                rows=tuple(_rows(session, experiment.id)),
                summary=experiment.summary,
                status=experiment.status,
            )

    def list_experiments(
        self, *, name: str | None = None, run_id: str | None = None, limit: int = 50
    ) -> list[ExperimentRecord]:
        """Experiments newest first, optionally only those of one prompt/task ``name`` or one run."""
        query = select(ExperimentTable)
        if name is not None:
            query = query.where(ExperimentTable.name == name)
        if run_id is not None:
            query = query.where(ExperimentTable.run_id == run_id)
        query = query.order_by(col(ExperimentTable.created_at).desc(), col(ExperimentTable.id).desc())
        with Session(self._engine) as session:
            return [experiment_record(e) for e in session.exec(query.limit(limit))]


def get_store(url: str | URL | None = None) -> Store:
    """The store at ``url``, else at ``$OPTIMIZE_STORE``, else ``sqlite:///<cwd>/.optimize/optimize.db``.

    ``postgresql://`` URLs use the psycopg 3 driver. The schema is created or migrated on first use, safely
    when several processes start at once.

    Example:
        >>> store = get_store("postgresql://optimizer@db.internal/evals")  # doctest: +SKIP
    """
    return Store(resolve_url(url))


def _check_same_eval(running: ExperimentTable, **expected: str) -> None:
    differ = [field for field, value in expected.items() if getattr(running, field) != value]
    if differ:
        raise ValueError(
            f"experiment {running.id} with key {running.key!r} is running with another "
            f"{', '.join(differ)}; the key must identify one config, split and dataset"
        )


def _rows(session: Session, experiment_id: str) -> list[RowResult]:
    query = select(RowTable).where(RowTable.experiment_id == experiment_id).order_by(col(RowTable.id))
    return [row_result(r) for r in session.exec(query)]


def _running(session: Session, experiment_id: str, *, for_update: bool) -> ExperimentTable:
    # FOR SHARE while adding rows, FOR UPDATE while finishing: rows never land in a closed experiment.
    query = select(ExperimentTable).where(ExperimentTable.id == experiment_id)
    experiment = session.exec(query.with_for_update(read=not for_update)).first()
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id!r}; writes take the full id from begin_experiment")
    if experiment.status != "running":
        raise ValueError(
            f"experiment {experiment_id} is {experiment.status}; a closed experiment never "
            f"changes (begin_experiment starts a new one)"
        )
    return experiment


def _find(session: Session, experiment_id: str) -> ExperimentTable:
    wanted = experiment_id.strip().lower()
    if _ID.fullmatch(wanted):
        found = session.get(ExperimentTable, wanted)
        if found is None:
            raise NotFound(f"no experiment {experiment_id!r}; list_experiments shows the recorded ones")
        return found
    if not _PREFIX.fullmatch(wanted):
        raise NotFound(
            f"no experiment {experiment_id!r}: ids are 32 hex characters, and a prefix needs at least {MIN_PREFIX}"
        )
    query = select(ExperimentTable).where(col(ExperimentTable.id).startswith(wanted, autoescape=True))
    matches = session.exec(query.limit(3)).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no experiment id starts with {experiment_id!r}")
    raise NotFound(
        f"experiment id prefix {experiment_id!r} is ambiguous (matches {matches[0].id}, "
        f"{matches[1].id}{', ...' if len(matches) > 2 else ''}); give more characters"
    )
