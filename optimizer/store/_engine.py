"""The one SQLAlchemy engine of a store, with the per-backend settings that make concurrent writers safe.

SQLite: WAL mode (readers never block the writer), a busy timeout (a writer waits for the lock instead of
failing), foreign keys on, and SQLAlchemy emitting ``BEGIN`` itself so that DDL is transactional and a
writer transaction can take the write lock up front (``BEGIN IMMEDIATE``, see :func:`writer`).
PostgreSQL: transaction-level advisory locks serialise the few read-then-write steps (:func:`lock`).
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
import zlib
from typing import Any

from sqlalchemy import URL, Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

BUSY_TIMEOUT_S = 60.0
_WRITER = "promptopt_writer"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity: PostgreSQL's JSON has no such tokens, so both backends get strings
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings pydantic reads back into floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def create_store_engine(url: URL) -> Engine:
    """An engine for ``url`` (already resolved by :func:`promptopt.store._url.resolve_url`)."""
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, json_serializer=_dumps)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S}, json_serializer=_dumps)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop the sqlite3 module from emitting BEGIN (it skips it before DDL); _sqlite_begin does it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any, attempts: int = 100) -> None:
    """Switching a new database to WAL needs an exclusive lock, and SQLite answers "database is locked" at
    once (without the busy handler) while another process switches or recovers it: retry for a while."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 + random.random() * 0.05)


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITER, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that write.

    On SQLite they take the write lock at ``BEGIN``, so a read-then-write transaction waits its turn there
    (under the busy timeout) instead of failing with "database is locked" when it first writes.
    """
    return engine.execution_options(**{_WRITER: True})


def lock(connection: Connection, namespace: int, key: str) -> None:
    """Serialise transactions on ``(namespace, key)`` until the current transaction ends.

    PostgreSQL takes a transaction-level advisory lock; on SQLite a :func:`writer` transaction already holds
    the database write lock, so there is nothing to do.
    """
    if connection.dialect.name == "postgresql":
        # pg_advisory_xact_lock(int4, int4): fold the key into a signed 32-bit int.
        objid = zlib.crc32(key.encode()) - 2**31
        connection.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": namespace, "id": objid})


def insert_ignoring_duplicates(dialect_name: str, table: Table, columns: list[str]) -> Insert:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the backend."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=columns)
