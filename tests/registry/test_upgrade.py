"""A database made by an earlier schema revision gains the registry and keeps its data."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from promptopt.registry import Registry
from promptopt.store import Store
from promptopt.store._engine import create_store_engine
from promptopt.store._migrate import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from promptopt.store._tables import ExperimentTable
from promptopt.store._url import resolve_url
from tests.registry.helpers import config

REGISTRY_TABLES = {"prompt_version", "prompt_label", "prompt_label_event"}
EXPERIMENT_ID = "ab" * 16
COLUMNS_AT_0002 = (
    "id",
    "key",
    "name",
    "status",
    "config",
    "config_hash",
    "model",
    "split",
    "dataset_hash",
    "created_at",
)


def _experiment_at_0002() -> sa.TableClause:
    """The experiment table with only the columns of revision 0002 (the code's table has gained some since)."""
    declared = ExperimentTable.__table__.c  # type: ignore[attr-defined]
    return sa.table("experiment", *(sa.column(name, declared[name].type) for name in COLUMNS_AT_0002))


def _make_at_0002(url: str) -> None:
    engine = create_store_engine(resolve_url(url))
    try:
        upgrade(engine, "0002")
        assert REGISTRY_TABLES.isdisjoint(inspect(engine).get_table_names())
        with engine.begin() as connection:
            connection.execute(
                _experiment_at_0002().insert(),
                [
                    {
                        "id": EXPERIMENT_ID,
                        "key": "k",
                        "name": "before-the-registry",
                        "status": "running",
                        "config": {"model": "m", "note": "ü"},
                        "config_hash": "c",
                        "model": "m",
                        "split": "test",
                        "dataset_hash": "d",
                        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
                    }
                ],
            )
    finally:
        engine.dispose()


def test_a_store_at_revision_0002_is_upgraded_and_keeps_its_data(store_url: str) -> None:
    _make_at_0002(store_url)
    store = Store(store_url)
    try:
        assert current_revision(store.engine) == head_revision() >= "0003"  # registry tables exist at head
        with store.engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}), SQLModel.metadata
            )
        assert diff == []  # the hand-written migration builds exactly the tables the code declares
        experiment = store.get_experiment(EXPERIMENT_ID)
        assert (experiment.name, experiment.config, experiment.status) == (
            "before-the-registry",
            {"model": "m", "note": "ü"},
            "running",
        )
        registry = Registry(store)
        version, _ = registry.register("triage", config(), created_by="alice")
        registry.set_label("triage", "production", version.version, who="alice")
        assert registry.get("triage", label="production") == version

        downgrade(store.engine, "0002")  # and back: the registry goes, the experiments stay
        assert REGISTRY_TABLES.isdisjoint(inspect(store.engine).get_table_names())
        experiment_at_0002 = _experiment_at_0002()
        with store.engine.connect() as connection:
            name = connection.execute(
                sa.select(experiment_at_0002.c.name).where(experiment_at_0002.c.id == EXPERIMENT_ID)
            ).scalar_one()
        assert name == "before-the-registry"
    finally:
        store.dispose()
