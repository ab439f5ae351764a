"""Migration 0004: a store at 0003 (with a registry in it) is upgraded, keeps its data, and gets exactly the
tables the code declares; downgrading to 0003 removes the logs and schedules tables and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from promptopt.logs import LogIn, LogStore
from promptopt.registry import Registry
from promptopt.store import PromptVersionTable, Store
from promptopt.store._engine import create_store_engine
from promptopt.store._migrate import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from promptopt.store._url import resolve_url
from tests.registry.helpers import config

TABLES = {"prompt_log", "log_feedback", "log_score", "schedule", "schedule_run"}


def test_upgrade_from_0003_keeps_the_registry_and_adds_the_logs_tables(store_url: str) -> None:
    engine = create_store_engine(resolve_url(store_url))
    upgrade(engine, "0003")
    assert TABLES.isdisjoint(inspect(engine).get_table_names())
    prompt = config()
    with engine.begin() as connection:
        connection.execute(
            PromptVersionTable.__table__.insert(),
            [
                {  # type: ignore[attr-defined]
                    "name": "triage",
                    "version": 1,
                    "config": prompt.model_dump(mode="json", by_alias=True),
                    "config_hash": prompt.hash,
                    "model": prompt.model,
                    "created_at": datetime(2026, 1, 2, tzinfo=UTC),
                    "created_by": "alice",
                }
            ],
        )
    engine.dispose()

    store = Store(store_url)  # opening the store upgrades it to the head
    try:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            assert compare_metadata(context, SQLModel.metadata) == []
        assert Registry(store).get("triage").config_hash == prompt.hash
        LogStore(store).add_logs([LogIn(prompt="triage", version=1, input={"text": "x"})])
        downgrade(store.engine, "0003")
        names = set(inspect(store.engine).get_table_names())
        assert TABLES.isdisjoint(names) and "prompt_version" in names
        with store.engine.connect() as connection:  # read as 0003 has it (the code reads the head's columns)
            kept = connection.execute(text("SELECT version FROM prompt_version WHERE name = 'triage'")).scalar_one()
        assert kept == 1
        upgrade(store.engine)
        assert Registry(store).get("triage").version == 1
        assert TABLES <= set(inspect(store.engine).get_table_names())
    finally:
        store.dispose()
