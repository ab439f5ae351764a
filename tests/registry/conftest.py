"""Registry fixtures; the store fixtures (SQLite and PostgreSQL) come from tests/stores.py."""

from __future__ import annotations

import pytest

from promptopt.registry import Registry
from promptopt.store import Store


@pytest.fixture
def registry(store: Store) -> Registry:
    return Registry(store)
