"""Alembic environment of the store.

At runtime :mod:`promptopt.store._migrate` hands over an open connection in a transaction
(``config.attributes["connection"]``). From the alembic command line (``alembic -c
optimizer/store/migrations/alembic.ini ...``) it opens the store named by ``$OPTIMIZE_STORE`` or the default.
"""

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import promptopt.store  # noqa: F401  (importing the package registers every table on SQLModel.metadata)
from promptopt.store._engine import create_store_engine
from promptopt.store._migrate import VERSION_TABLE
from promptopt.store._url import resolve_url

config = context.config


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite can only ALTER by copying the table, which batch mode does for us.
    context.configure(
        connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True, version_table=VERSION_TABLE
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=resolve_url(),
        target_metadata=SQLModel.metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_store_engine(resolve_url())
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
