"""Logs, feedback and online scores in the store: idempotent bulk writes, queries, per-version numbers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from promptopt.errors import InputError, NotFound
from promptopt.logs._values import Feedback, FeedbackIn, IngestResult, LogEntry, LogIn, LogQuery, VersionStats
from promptopt.secrets import scrub_record
from promptopt.store import (
    LogFeedbackTable,
    LogScoreTable,
    PromptLogTable,
    Store,
    insert_ignoring_duplicates,
    utc,
    writer,
)

_CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits
_SOURCE = "request body"
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LogStore:
    """Production logs of a :class:`~promptopt.store.Store`.

    Contract:

    * A batch is stored in one transaction: all of it or, when one entry is refused, none of it.
    * Writes are idempotent by id: an entry whose id is stored already is counted as a duplicate and left
      as it was (a client that resends after a timeout stores nothing twice).
    * Every string of a log and of a feedback entry goes through ``scrub`` before it is stored (API-key
      patterns by default), whatever the client did.
    * Feedback entries are all kept; the one made last (``created_at``, then id) is the log's feedback.
    """

    def __init__(self, store: Store, *, scrub: Any = scrub_record) -> None:
        self._store = store
        self._engine = store.engine
        self._writer = writer(store.engine)
        self._scrub = scrub

    @property
    def store(self) -> Store:
        return self._store

    def add_logs(self, logs: Sequence[LogIn]) -> IngestResult:
        """Store a batch of logs; ids already stored are skipped (and counted as duplicates)."""
        now = datetime.now(UTC)
        rows = [self._log_row(log, now) for log in logs]
        with Session(self._writer) as session, session.begin():
            return _insert_new(session, PromptLogTable, rows)

    def add_feedback(self, feedback: Sequence[FeedbackIn]) -> IngestResult:
        """Store a batch of feedback entries.

        Raises:
            InputError: an entry names a log that is not stored (field ``body.feedback.<i>.log_id``); nothing
                of the batch is stored.
        """
        now = datetime.now(UTC)
        rows = [self._feedback_row(entry, now) for entry in feedback]
        with Session(self._writer) as session, session.begin():
            wanted = sorted({r["log_id"] for r in rows})
            known: set[str] = set()
            for chunk in _chunks(wanted):
                known.update(session.exec(select(PromptLogTable.id).where(col(PromptLogTable.id).in_(chunk))))
            for index, row in enumerate(rows):
                if row["log_id"] not in known:
                    raise InputError(
                        _SOURCE,
                        f"body.feedback.{index}.log_id",
                        f"no log with id {row['log_id']!r}; send the log before its feedback",
                    )
            return _insert_new(session, LogFeedbackTable, rows)

    def get(self, log_id: str) -> LogEntry:
        """One log with its latest feedback.

        Raises:
            NotFound: no log has this id.
        """
        with Session(self._engine) as session:
            row = session.get(PromptLogTable, log_id)
            if row is None:
                raise NotFound(f"no log {log_id!r}")
            return _entry(row, _latest_feedback(session, [log_id]).get(log_id))

    def query(self, query: LogQuery) -> list[LogEntry]:
        """The logs ``query`` selects, oldest first (by the time of the call, then id; ``newest_first``
        reverses it), with their latest feedback."""
        stmt = select(PromptLogTable)
        if query.prompt is not None:
            stmt = stmt.where(PromptLogTable.prompt == query.prompt)
        if query.version is not None:
            stmt = stmt.where(PromptLogTable.version == query.version)
        if query.label is not None:
            stmt = stmt.where(PromptLogTable.label == query.label)
        if query.since is not None:
            stmt = stmt.where(PromptLogTable.created_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(PromptLogTable.created_at < query.until)
        if query.with_feedback:
            stmt = stmt.where(exists().where(col(LogFeedbackTable.log_id) == col(PromptLogTable.id)))
        if query.newest_first:
            stmt = stmt.order_by(col(PromptLogTable.created_at).desc(), col(PromptLogTable.id).desc())
        else:
            stmt = stmt.order_by(col(PromptLogTable.created_at), col(PromptLogTable.id))
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        with Session(self._engine) as session:
            rows = list(session.exec(stmt))
            feedback = _latest_feedback(session, [r.id for r in rows])
            return [_entry(r, feedback.get(r.id)) for r in rows]

    def new_feedback(self, prompt: str, since: datetime | None) -> int:
        """Feedback entries on ``prompt``'s logs received after ``since`` (all of them for ``None``)."""
        stmt = (
            select(func.count())
            .select_from(LogFeedbackTable)
            .join(PromptLogTable, col(PromptLogTable.id) == col(LogFeedbackTable.log_id))
            .where(PromptLogTable.prompt == prompt)
        )
        if since is not None:
            stmt = stmt.where(LogFeedbackTable.received_at > since)
        with Session(self._engine) as session:
            return int(session.exec(stmt).one())

    def scored(self, prompt: str, scorers: Iterable[str]) -> set[tuple[str, str]]:
        """``(log id, scorer)`` pairs of ``prompt``'s logs that already have an online score (or error)."""
        stmt = (
            select(LogScoreTable.log_id, LogScoreTable.scorer)
            .select_from(LogScoreTable)
            .join(PromptLogTable, col(PromptLogTable.id) == col(LogScoreTable.log_id))
            .where(PromptLogTable.prompt == prompt, col(LogScoreTable.scorer).in_(list(scorers)))
        )
        with Session(self._engine) as session:
            return {(log_id, scorer) for log_id, scorer in session.exec(stmt)}

    def add_scores(self, scores: Sequence[tuple[str, str, float | None, str | None]]) -> None:
        """Record ``(log id, scorer, value, error)`` rows; a pair already recorded keeps its first value."""
        if not scores:
            return
        now = datetime.now(UTC)
        values = [
            {"log_id": log_id, "scorer": scorer, "value": value, "error": error, "created_at": now}
            for log_id, scorer, value, error in scores
        ]
        with Session(self._writer) as session, session.begin():
            dialect = session.get_bind().dialect.name
            stmt = insert_ignoring_duplicates(dialect, LogScoreTable.__table__, ["log_id", "scorer"])  # type: ignore[attr-defined]
            session.execute(stmt, values)

    def stats(self, prompt: str) -> list[VersionStats]:
        """Per version of ``prompt`` (newest first): logs, online score, feedback rate."""
        with Session(self._engine) as session:
            counts = session.exec(
                select(
                    PromptLogTable.version,
                    func.count(),
                    func.min(PromptLogTable.created_at),
                    func.max(PromptLogTable.created_at),
                )
                .where(PromptLogTable.prompt == prompt)
                .group_by(col(PromptLogTable.version))
            ).all()
            online = session.execute(  # five columns: more than sqlmodel's select() is typed for
                sa.select(
                    col(PromptLogTable.version),
                    col(LogScoreTable.scorer),
                    func.avg(col(LogScoreTable.value)),
                    func.count(col(LogScoreTable.value)),
                    func.count(),
                )
                .select_from(LogScoreTable)
                .join(PromptLogTable, col(PromptLogTable.id) == col(LogScoreTable.log_id))
                .where(col(PromptLogTable.prompt) == prompt)
                .group_by(col(PromptLogTable.version), col(LogScoreTable.scorer))
            ).all()
            scored = dict(
                session.exec(
                    select(PromptLogTable.version, func.count(func.distinct(LogScoreTable.log_id)))
                    .select_from(LogScoreTable)
                    .join(PromptLogTable, col(PromptLogTable.id) == col(LogScoreTable.log_id))
                    .where(PromptLogTable.prompt == prompt)
                    .group_by(col(PromptLogTable.version))
                ).all()
            )
            feedback = _feedback_by_version(session, prompt)
        return sorted(
            (
                _version_stats(v, n, first, last, scored.get(v, 0), online, feedback.get(v, []))
                for v, n, first, last in counts
            ),
            key=lambda s: -(s.version or 0),
        )

    def _log_row(self, log: LogIn, now: datetime) -> dict[str, Any]:
        clean = self._scrub({"input": log.input, "output": log.output, "metadata": log.metadata, "model": log.model})
        return {
            "id": log.id or uuid.uuid4().hex,
            "prompt": log.prompt,
            "version": log.version,
            "label": log.label,
            "input": clean["input"],
            "output": clean["output"],
            "model": clean["model"],
            "latency_s": log.latency_s,
            "tokens": log.tokens,
            "cost_usd": log.cost_usd,
            "metadata": clean["metadata"],
            "created_at": log.created_at or now,
            "received_at": now,
        }

    def _feedback_row(self, entry: FeedbackIn, now: datetime) -> dict[str, Any]:
        clean = self._scrub({"label": entry.label, "corrected": entry.corrected})
        return {
            "id": entry.id or uuid.uuid4().hex,
            "log_id": entry.log_id,
            "score": entry.score,
            "label": clean["label"],
            "corrected": clean["corrected"],
            "created_at": entry.created_at or now,
            "received_at": now,
        }


def _insert_new(session: Session, table: Any, rows: list[dict[str, Any]]) -> IngestResult:
    """Insert the rows whose id is not stored yet (``ON CONFLICT DO NOTHING`` covers concurrent resends)."""
    ids = [r["id"] for r in rows]
    stored: set[str] = set()
    for chunk in _chunks(ids):
        stored.update(session.exec(select(table.id).where(col(table.id).in_(chunk))))
    fresh, seen = [], set(stored)
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            fresh.append(row)
    if fresh:
        stmt = insert_ignoring_duplicates(session.get_bind().dialect.name, table.__table__, ["id"])
        session.execute(stmt, fresh)
    return IngestResult(accepted=len(fresh), duplicates=len(rows) - len(fresh))


def _latest_feedback(session: Session, log_ids: list[str]) -> dict[str, Feedback]:
    latest: dict[str, LogFeedbackTable] = {}
    for chunk in _chunks(log_ids):
        for row in session.exec(select(LogFeedbackTable).where(col(LogFeedbackTable.log_id).in_(chunk))):
            held = latest.get(row.log_id)
            if held is None or (utc(row.created_at), row.id) > (utc(held.created_at), held.id):
                latest[row.log_id] = row
    return {
        log_id: Feedback(id=r.id, score=r.score, label=r.label, corrected=r.corrected, created_at=utc(r.created_at))
        for log_id, r in latest.items()
    }


def _feedback_by_version(session: Session, prompt: str) -> dict[int | None, list[float | None]]:
    """Latest feedback score of every log of ``prompt`` that has feedback, by version (``None``: no score)."""
    rows = session.exec(
        select(PromptLogTable.version, LogFeedbackTable)
        .select_from(LogFeedbackTable)
        .join(PromptLogTable, col(PromptLogTable.id) == col(LogFeedbackTable.log_id))
        .where(PromptLogTable.prompt == prompt)
    ).all()
    latest: dict[str, tuple[int | None, LogFeedbackTable]] = {}
    for version, row in rows:
        held = latest.get(row.log_id)
        if held is None or (utc(row.created_at), row.id) > (utc(held[1].created_at), held[1].id):
            latest[row.log_id] = (version, row)
    out: dict[int | None, list[float | None]] = {}
    for version, row in latest.values():
        out.setdefault(version, []).append(row.score)
    return out


def _version_stats(
    version: int | None,
    logs: int,
    first: datetime,
    last: datetime,
    scored: int,
    online: Sequence[Any],
    feedback: list[float | None],
) -> VersionStats:
    mine = [(scorer, mean, n_values, n_rows) for v, scorer, mean, n_values, n_rows in online if v == version]
    values = sum(n for _, _, n, _ in mine)
    total = sum((mean or 0.0) * n for _, mean, n, _ in mine)
    scores = [s for s in feedback if s is not None]
    return VersionStats(
        version=version,
        logs=logs,
        first_at=utc(first),
        last_at=utc(last),
        scored_logs=scored,
        online_score=total / values if values else None,
        online_by_scorer={scorer: None if mean is None else float(mean) for scorer, mean, _, _ in mine},
        scorer_errors=sum(rows - n for _, _, n, rows in mine),
        feedback_logs=len(feedback),
        feedback_score=sum(scores) / len(scores) if scores else None,
    )


def _entry(row: PromptLogTable, feedback: Feedback | None) -> LogEntry:
    return LogEntry(
        id=row.id,
        prompt=row.prompt,
        version=row.version,
        label=row.label,
        input=row.input,
        output=row.output,
        model=row.model,
        latency_s=row.latency_s,
        tokens=row.tokens,
        cost_usd=row.cost_usd,
        metadata=row.meta,
        created_at=utc(row.created_at),
        feedback=feedback,
    )
