"""One owner per table: the store declares every table (one schema, one migration history), and each table of
another package is used by exactly that package; the others go through its API (``LogStore``, ``Registry``,
``Schedules``)."""

from __future__ import annotations

from sqlmodel import SQLModel

import promptopt.store
from tests.test_architecture import imports_of, modules, package_of

OWNERS = {
    "PromptLogTable": "promptopt.logs",
    "LogFeedbackTable": "promptopt.logs",
    "LogScoreTable": "promptopt.logs",
    "PromptVersionTable": "promptopt.registry",
    "PromptLabelTable": "promptopt.registry",
    "PromptLabelEventTable": "promptopt.registry",
    "AdapterTable": "promptopt.registry",
    "ScheduleTable": "promptopt.schedules",
    "ScheduleRunTable": "promptopt.schedules",
}


def users_of_tables() -> dict[str, set[str]]:
    """Table class -> the packages (other than the store) whose source imports it."""
    users: dict[str, set[str]] = {name: set() for name in OWNERS}
    for module in modules():
        for imp in imports_of(module):
            if package_of(imp.target) == "promptopt.store" and package_of(module.name) != "promptopt.store":
                for name in set(imp.names) & set(OWNERS):
                    users[name].add(package_of(module.name))
    return users


def test_each_table_is_used_by_its_owner_only() -> None:
    assert users_of_tables() == {name: {owner} for name, owner in OWNERS.items()}


def test_the_owner_map_covers_every_table_the_store_exports_for_another_package() -> None:
    tables = {
        name
        for name in promptopt.store.__all__
        if isinstance(getattr(promptopt.store, name), type) and name.endswith("Table")
    }
    assert tables - {"RunTable"} == set(OWNERS)  # RunTable: the store's own table of search runs
    declared = {table.name for table in SQLModel.metadata.sorted_tables}
    assert {getattr(promptopt.store, name).__tablename__ for name in OWNERS} <= declared
