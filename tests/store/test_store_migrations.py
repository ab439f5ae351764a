"""The migration chain builds exactly the tables on SQLModel.metadata and removes them again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from promptopt.store import Store, StoreSchemaError
from promptopt.store._engine import create_store_engine
from promptopt.store._migrate import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from promptopt.store._url import resolve_url

STORE_TABLES = set(SQLModel.metadata.tables)  # every table the code defines (experiments, runs, registry...)
VERSIONS = Path(upgrade.__code__.co_filename).parent / "migrations" / "versions"
NEWEST = max(p.stem.split("_")[0] for p in VERSIONS.glob("0*.py"))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}),
                                SQLModel.metadata)


def test_upgrade_head_and_downgrade_base_from_empty(store_url: str) -> None:
    engine = create_store_engine(resolve_url(store_url))
    try:
        assert current_revision(engine) is None and _tables(engine) == set()
        upgrade(engine)
        assert current_revision(engine) == head_revision() == NEWEST
        assert _tables(engine) == STORE_TABLES | {VERSION_TABLE}
        assert _schema_diff(engine) == []
        upgrade(engine)  # already at head: nothing to do
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert _tables(engine) == {VERSION_TABLE}
        upgrade(engine)
        assert _schema_diff(engine) == []
    finally:
        engine.dispose()


def test_a_schema_newer_than_the_code_is_refused(store_url: str) -> None:
    Store(store_url).dispose()
    engine = create_store_engine(resolve_url(store_url))
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreSchemaError, match="revision '9999'.*upgrade promptopt"):
        Store(store_url)
