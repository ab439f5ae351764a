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
        return compare_metadata(
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}), SQLModel.metadata
        )


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


def test_0007_turns_trial_number_offsets_into_roles_and_back(store_url: str) -> None:
    """Before 0007 a run's pre-pass was trial -1, trial n's test eval n + 100000 and the promotion gate's evals
    200000 + i; after it each has its role and a trial number that names a trial (or none)."""
    engine = create_store_engine(resolve_url(store_url))
    old = {
        "prepass": ("r", -1),
        "trial": ("r", 3),
        "verdict": ("r", 100_003),
        "incumbent": ("r", 200_001),
        "eval": (None, None),
    }
    try:
        upgrade(engine, "0006")
        with engine.begin() as connection:
            for name, (run_id, trial) in old.items():
                connection.execute(
                    text(
                        "INSERT INTO experiment (id, key, name, status, config, config_hash, model, split,"
                        " dataset_hash, run_id, trial_number, created_at) VALUES (:id, 'k', :name, 'finished',"
                        " '{}', 'h', 'm', 'test', 'd', :run, :trial, CURRENT_TIMESTAMP)"
                    ),
                    {"id": name, "name": name, "run": run_id, "trial": trial},
                )
        upgrade(engine, "0007")
        with engine.connect() as connection:
            after = {
                r.id: (r.role, r.trial_number)
                for r in connection.execute(text("SELECT id, role, trial_number FROM experiment"))
            }
        assert after == {
            "prepass": ("prepass", None),
            "trial": ("trial", 3),
            "verdict": ("verdict", 3),
            "incumbent": ("incumbent", None),
            "eval": ("eval", None),
        }
        downgrade(engine, "0006")
        with engine.connect() as connection:
            back = {r.id: r.trial_number for r in connection.execute(text("SELECT id, trial_number FROM experiment"))}
        assert back == {"prepass": -1, "trial": 3, "verdict": 100_003, "incumbent": 200_000, "eval": None}
    finally:
        downgrade(engine, "base")
        engine.dispose()


def _insert(connection, engine: Engine, table: str, **values: object) -> None:
    """A row of ``table`` with ``values`` and a placeholder in every other required column."""
    for column in inspect(engine).get_columns(table):
        if column["name"] in values or column["nullable"] or column.get("default") is not None:
            continue
        kind = str(column["type"]).upper()
        values[column["name"]] = (
            False
            if "BOOL" in kind
            else 0
            if "INT" in kind
            else 0.0
            if "FLOAT" in kind or "REAL" in kind or "DOUBLE" in kind
            else "{}"
        )
        if "TIME" in kind or "DATE" in kind:
            values[column["name"]] = "2026-12-03 00:00:00"
    names = ", ".join(f'"{n}"' for n in values)
    connection.execute(text(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(":" + n for n in values)})'), values)


def test_downgrading_0007_keeps_the_rows_of_every_experiment(store_url: str) -> None:
    """0007's downgrade drops the role column; on SQLite a batch that copies the experiment table would drop
    the old one and, with foreign keys on, cascade the delete to every recorded row."""
    engine = create_store_engine(resolve_url(store_url))
    try:
        upgrade(engine, "0007")
        with engine.begin() as connection:
            _insert(connection, engine, "experiment", id="e1", role="trial", trial_number=2, run_id="r")
            for i in range(3):
                _insert(connection, engine, "row", id=i + 1, experiment_id="e1", case_id=f"c{i}", repeat=0)
        downgrade(engine, "0006")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT case_id FROM row WHERE experiment_id = 'e1'")).scalars().all()
            trial = connection.execute(text("SELECT trial_number FROM experiment WHERE id = 'e1'")).scalar_one()
        assert sorted(rows) == ["c0", "c1", "c2"] and trial == 2
    finally:
        downgrade(engine, "base")
        engine.dispose()
