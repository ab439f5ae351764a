"""Store fixtures shared by every test package (a pytest plugin loaded by tests/conftest.py): contract tests
run on SQLite (a file in tmp_path) and on PostgreSQL (a fresh schema of one database created for the test
session and dropped after it). PostgreSQL must be running: these tests never skip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from promptopt.store import Store, get_store

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def _psycopg(url: str) -> str:
    return url.replace("postgresql", "postgresql+psycopg", 1)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a database of its own for this test session."""
    name = f"promptopt_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{_psycopg(PG_SERVER)}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield f"{PG_SERVER}/{name}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


def fresh_pg_url(database_url: str) -> str:
    """A URL on an empty schema of ``database_url``: each test gets a database of its own, in effect."""
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
