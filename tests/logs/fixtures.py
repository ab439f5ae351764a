"""Store fixtures of the logs and schedules tests: SQLite (a file in tmp_path) and PostgreSQL (a fresh schema of a
database created for this session), as the store's own tests do (tests/store/conftest.py). Imported by the
conftest files of tests/logs and tests/schedules."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine

from promptopt.store import Store, get_store

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def _psycopg(url: str) -> str:
    return url.replace("postgresql", "postgresql+psycopg", 1)


_SHARED: dict[str, Any] = {"name": None, "users": 0}


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a database of its own for this test session (PostgreSQL must be running: no skip).

    Both conftest files register this fixture; they share one database (dropping one costs a checkpoint)."""
    admin = create_engine(f"{_psycopg(PG_SERVER)}/postgres", isolation_level="AUTOCOMMIT")
    if _SHARED["users"] == 0:
        _SHARED["name"] = f"promptopt_logs_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{_SHARED["name"]}"')
    _SHARED["users"] += 1
    yield f"{PG_SERVER}/{_SHARED['name']}"
    _SHARED["users"] -= 1
    if _SHARED["users"] == 0:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{_SHARED["name"]}" WITH (FORCE)')
    admin.dispose()


def fresh_pg_url(database_url: str) -> str:
    """A URL on an empty schema of ``database_url``."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(_psycopg(database_url))
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return f"{database_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of an empty store, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'optimize.db'}"
    return fresh_pg_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of an empty SQLite store, for tests whose subject is not the backend."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'optimize.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = get_store(store_url)
    yield store
    store.dispose()
