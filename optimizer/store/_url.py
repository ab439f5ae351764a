"""Where the store lives: the caller's URL, else ``OPTIMIZE_STORE``, else a SQLite file under the cwd."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from promptopt.errors import InputError

ENV_VAR = "OPTIMIZE_STORE"
_EXAMPLES = "sqlite:///path/to/optimize.db or postgresql://user:password@host:5432/dbname"
_SOURCE = "store URL"


class StoreUrl(str):
    """A store URL that connects but never prints its password.

    Its value is the full URL, password included, so it can be handed to another process or to another
    SQLAlchemy user (Optuna's storage) as is; ``str()``, ``repr()`` and f-strings show ``***`` in its place.
    Pass the value itself along, not ``str()`` of it.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return make_url(self).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return repr(self.__str__())

    def __format__(self, format_spec: str) -> str:
        return format(self.__str__(), format_spec)


def default_url() -> str:
    """``sqlite:///<cwd>/.optimize/optimize.db``."""
    return f"sqlite:///{Path.cwd() / '.optimize' / 'optimize.db'}"


def resolve_url(url: str | URL | None = None) -> URL:
    """The SQLAlchemy URL of a store.

    ``None`` falls back to ``$OPTIMIZE_STORE`` and then to :func:`default_url`. ``postgresql://`` (and
    ``postgres://``) are rewritten to the psycopg 3 driver. Only SQLite and PostgreSQL are supported.

    Raises:
        InputError: the URL cannot be parsed or names another database. The message never echoes the URL,
            which may hold a password.
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or default_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(_SOURCE, "", f"cannot parse it; expected e.g. {_EXAMPLES}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(
            _SOURCE, "", f"backend {parsed.get_backend_name()!r} is not supported; expected e.g. {_EXAMPLES}"
        )
    return parsed


def ensure_sqlite_folder(url: URL) -> None:
    """Create the folder of a SQLite database file (SQLite creates the file, not its folder)."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
