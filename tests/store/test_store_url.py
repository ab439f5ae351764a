"""Where the store lives, and that its URL never shows a password."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from sqlalchemy import make_url

from promptopt.errors import InputError
from promptopt.store import ENV_VAR, StoreUrl, get_store
from promptopt.store._url import resolve_url


@pytest.mark.parametrize("url", ["postgresql://u@h:5432/db", "postgres://u@h:5432/db"])
def test_postgres_urls_use_psycopg_3(url: str) -> None:
    assert resolve_url(url).render_as_string() == "postgresql+psycopg://u@h:5432/db"


def test_explicit_drivers_are_kept() -> None:
    assert resolve_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"


def _shown(url: object) -> list[str]:
    return [str(url), repr(url), f"{url}", "%s" % url, f"{url!r}", str([url])]  # noqa: UP031 (as logging does)


def test_a_store_url_connects_with_its_password_but_prints_it_masked() -> None:
    url = StoreUrl("postgresql+psycopg://alice:s3cret@db.internal/evals")
    assert all("s3cret" not in shown and "alice:***@db.internal" in shown for shown in _shown(url))
    assert make_url(url).password == "s3cret" and url.startswith("postgresql+psycopg://alice:s3cret@")
    assert make_url(pickle.loads(pickle.dumps(url))).password == "s3cret"  # crosses to workers intact
    assert "s3cret" not in str(pickle.loads(pickle.dumps(url)))


@pytest.mark.postgres
def test_a_store_never_prints_its_password(pg_database: str) -> None:
    store = get_store(pg_database.replace("postgres@", "postgres:s3cret@"))  # trust auth ignores it
    try:
        assert all("s3cret" not in shown for shown in _shown(store) + _shown(store.url))
        assert "postgres:***@" in repr(store)
        again = get_store(store.url)
        assert make_url(again.url).password == "s3cret"
        again.dispose()
    finally:
        store.dispose()


def test_default_is_a_sqlite_file_under_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    store = get_store()
    try:
        assert make_url(store.url).database == str(tmp_path / ".optimize" / "optimize.db")
        assert (tmp_path / ".optimize" / "optimize.db").is_file()
    finally:
        store.dispose()


def test_the_environment_names_the_store_unless_a_url_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'from-env' / 'env.db'}")
    for url, expected in [
        (None, tmp_path / "from-env" / "env.db"),
        (f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "x.db"),
    ]:
        store = get_store(url)
        store.dispose()
        assert make_url(store.url).database == str(expected) and expected.is_file()
    assert not (tmp_path / ".optimize").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url :// s3cret", "cannot parse it; expected e.g. sqlite:///"),
        ("mysql://root:s3cret@h/db", "backend 'mysql' is not supported"),
    ],
)
def test_bad_urls_say_what_is_expected_without_echoing_them(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        resolve_url(url)
    assert "s3cret" not in str(error.value)
