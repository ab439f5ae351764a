"""PromptClient on a code task's version: the bundle from the store (SQLite and PostgreSQL) and from a real
server, each prompt rendered as a one-prompt version renders, label moves seen through the TTL cache, and the
last-known-good bundle on disk when the server is gone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from promptopt.config import PipelineConfig
from promptopt.errors import InputError
from promptopt.registry import Registry
from promptopt.sdk import Prompt, PromptClient, PromptUnavailable
from promptopt.store import get_store
from tests.registry.helpers import bundle, config
from tests.server.helpers import served

VARIABLES = {"context": "The parcel left Lyon on Monday.", "question": "Where is my parcel?"}


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def seed(url: str) -> None:
    store = get_store(url)
    registry = Registry(store)
    registry.register("qa-pipeline", bundle("Answer briefly."), created_by="a")
    registry.register("qa-pipeline", bundle("Answer with a citation.", code_hash="e" * 64), created_by="a")
    registry.set_label("qa-pipeline", "production", 1, who="a")
    registry.register("triage", config(), created_by="a")
    registry.set_label("triage", "production", 1, who="a")
    store.dispose()


def assert_renders_like_its_prompts(prompt: Prompt, expected: PipelineConfig) -> None:
    for name in ("rewrite", "answer"):
        part, one = prompt.prompt(name), expected.prompt(name)
        assert part.config == one and part.part == name and part.config_hash == expected.hash
        assert part.messages(**VARIABLES) == one.render(VARIABLES)
        assert part.render(**VARIABLES) == {**one.call_params(), "messages": one.render(VARIABLES)}
        assert part.render_openai(**VARIABLES)["model"] == one.model.removeprefix("openai/")


def test_a_bundle_from_the_store_renders_each_prompt_like_a_one_prompt_version(store_url: str, tmp_path: Path) -> None:
    seed(store_url)
    with PromptClient(store_url, cache_dir=tmp_path / "lkg") as client:
        prompt = client.get("qa-pipeline")
        assert (prompt.version, prompt.label, prompt.stale) == (1, "production", False)
        assert prompt.config == bundle("Answer briefly.") and prompt.config_hash == bundle("Answer briefly.").hash
        assert (prompt.function, prompt.code_hash, prompt.prompts) == (
            "qa.pipeline:answer",
            "c" * 64,
            ("rewrite", "answer"),
        )
        assert_renders_like_its_prompts(prompt, bundle("Answer briefly."))
        assert prompt.prompt("answer").render(**VARIABLES)["messages"][-1] == {
            "role": "user",
            "content": "Context: The parcel left Lyon on Monday.\nQuestion: Where is my parcel?",
        }
        with pytest.raises(KeyError, match="context"):  # strict, as a one-prompt version
            prompt.prompt("answer").render(question="Where?")
        with pytest.raises(KeyError, match=r"no prompt 'answr' in this task; it has \['answer', 'rewrite'\]"):
            prompt.prompt("answr")
        with pytest.raises(InputError, match=r"qa-pipeline v1 is a code task with prompts \['rewrite', 'answer'\]"):
            prompt.render(**VARIABLES)
        one = client.get("triage")
        assert (one.function, one.code_hash, one.prompts, one.part) == (None, None, (), None)
        assert one.render(text="meh") == {**config().call_params(), "messages": config().render({"text": "meh"})}
        with pytest.raises(KeyError, match="triage v1 is one prompt, not a code task"):
            one.prompt("answer")


def test_a_label_move_brings_the_whole_new_bundle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seed(url)
    with PromptClient(url, ttl_s=0.05, cache_dir=tmp_path / "lkg") as client:
        assert client.get("qa-pipeline").code_hash == "c" * 64
        store = get_store(url)
        Registry(store).set_label("qa-pipeline", "production", 2, who="b")
        store.dispose()
        time.sleep(0.06)
        wait_until(lambda: client.get("qa-pipeline").version == 2)
        moved = client.get("qa-pipeline")
        assert moved.config == bundle("Answer with a citation.", code_hash="e" * 64) and moved.code_hash == "e" * 64
        assert moved.prompt("answer").config.instruction == "Answer with a citation."


def test_a_cold_start_with_the_server_stopped_serves_the_last_known_good_bundle(tmp_path: Path) -> None:
    with served(tmp_path / "server") as server:
        server.registry.register("qa-pipeline", bundle(), created_by="a")
        server.registry.set_label("qa-pipeline", "production", 1, who="a")
        url = server.url
        with PromptClient(url, cache_dir=tmp_path / "lkg") as client:
            live = client.get("qa-pipeline")
            assert not live.stale and live.config == bundle() and live.config_hash == bundle().hash
    saved = [p.name for p in (tmp_path / "lkg").rglob("*.json")]
    assert saved == ["qa-pipeline@production.json"]
    with PromptClient(url, cache_dir=tmp_path / "lkg", timeout_s=2) as client:
        cold = client.get("qa-pipeline")
        assert cold.stale and f"{url} did not answer (ConnectError" in cold.stale_reason
        assert isinstance(cold.config, PipelineConfig) and cold.config.hash == live.config_hash
        assert (cold.function, cold.code_hash) == ("qa.pipeline:answer", "c" * 64)
        answer = cold.prompt("answer")
        assert answer.stale and answer.stale_reason == cold.stale_reason  # a part says where it came from
        assert_renders_like_its_prompts(cold, bundle())
        with pytest.raises(PromptUnavailable, match="no last-known-good copy"):
            client.get("qa-pipeline", label="staging")
