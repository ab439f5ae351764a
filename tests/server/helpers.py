"""A seeded registry served by a real uvicorn server on 127.0.0.1, with a loopback fake OpenAI model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from promptopt.registry import Registry
from promptopt.server import create_app, serve_in_thread
from promptopt.spec import Decoding
from promptopt.store import Store, get_store
from promptopt.testing import FakeOpenAIServer
from tests.registry.helpers import config

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Served:
    url: str
    store: Store
    registry: Registry
    model: FakeOpenAIServer


def seed(registry: Registry, model_url: str) -> None:
    """``support-triage`` v1 (production) and v2 (staging) run on the fake model; ``greet`` has one version."""
    params = Decoding(max_tokens=8, extra={"api_base": model_url})
    for instruction in ("Is the review positive or negative?", "Answer positive or negative."):
        registry.register("support-triage", config(instruction, params=params), created_by="seed")
    registry.set_label("support-triage", "production", 1, who="seed")
    registry.set_label("support-triage", "staging", 2, who="seed")
    registry.register("greet", config("Greet."), created_by="seed")


@contextmanager
def served(folder: Path, **app_options) -> Iterator[Served]:
    """A seeded store in ``folder`` behind a server on a free port (the model's key is a dummy)."""
    store = get_store(f"sqlite:///{folder / 'registry.db'}")
    registry = Registry(store)
    with pytest.MonkeyPatch.context() as patch, FakeOpenAIServer() as model:
        patch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
        seed(registry, model.url)
        options = {"token": TOKEN, **app_options}
        with serve_in_thread(create_app(store, **options)) as url:
            yield Served(url, store, registry, model)
    store.dispose()
