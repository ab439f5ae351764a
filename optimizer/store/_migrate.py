"""Schema migrations: Alembic, run in code from the scripts packaged in ``migrations/`` (no alembic.ini).

To change the schema, edit the tables (``_tables.py``, or a new ``_<concept>_tables.py`` imported by the
package) and write ``migrations/versions/000N_<what>.py`` by hand with ``revision = "000N"`` and
``down_revision`` the previous one. The contract tests check that ``upgrade head`` builds exactly the
tables on ``SQLModel.metadata`` and that ``downgrade base`` removes them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from promptopt.errors import OptimizeError
from promptopt.store._engine import lock, writer

_SCRIPTS = Path(__file__).parent / "migrations"
_LOCK_NAMESPACE = 0x5052  # advisory-lock namespace of schema changes ("PR")
# Not alembic's default name: Optuna keeps its study in the same database with its own alembic_version.
VERSION_TABLE = "promptopt_alembic_version"


class StoreSchemaError(OptimizeError):
    """The database's schema revision is unknown to this version of promptopt."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest revision in ``migrations/versions``."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``.

    Safe when several processes do it at once: the steps run in one transaction that first takes a lock
    (PostgreSQL advisory lock, SQLite write lock), and Alembic reads the revision again after the lock, so
    the second process finds the work done.

    Raises:
        StoreSchemaError: the database is at a revision this code does not know (made by a newer version).
    """
    current = current_revision(engine)
    if revision == "head" and current == head_revision():
        return
    if current is not None and not _known(current):
        raise StoreSchemaError(
            f"the store's schema is at revision {current!r}, which this version of "
            f"promptopt does not know (its newest is {head_revision()!r}); "
            f"upgrade promptopt"
        )
    _step(engine, command.upgrade, revision)


def _known(revision: str) -> bool:
    try:
        ScriptDirectory.from_config(_config()).get_revision(revision)
    except CommandError:
        return False
    return True


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"``: drop every table of the store)."""
    _step(engine, command.downgrade, revision)


def _step(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    with writer(engine).begin() as connection:
        lock(connection, _LOCK_NAMESPACE, "schema")
        step(_config(connection), revision)
