"""PromptClient: lookups from the store, rendering, the TTL cache with stale-while-revalidate, and the
last-known-good copies on disk."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from promptopt import names
from promptopt.errors import InputError, NotFound
from promptopt.registry import LABEL_PATTERN, NAME_PATTERN, Registry
from promptopt.sdk import Fetched, PromptClient, PromptRef, PromptSource, PromptUnavailable
from promptopt.sdk import _prompt as sdk_prompt
from promptopt.store import get_store
from tests.registry.helpers import config, rich_config


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class ScriptedSource(PromptSource):
    """Answers from ``versions[label]``; ``fail`` makes it raise, ``gate`` makes it wait until set."""

    location = "scripted://registry"

    def __init__(self) -> None:
        self.versions: dict[str, int] = {"production": 1}
        self.fail: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.fetches: list[tuple[str, str | None]] = []

    def fetch(self, ref: PromptRef, etag: str | None = None) -> Fetched | None:
        self.fetches.append((ref.key, etag))
        assert self.gate.wait(timeout=10)
        if self.fail is not None:
            raise self.fail
        version = ref.version or self.versions[ref.label]
        if etag == f"v{version}":
            return None
        cfg = config(f"instruction v{version}")
        return Fetched(
            name=ref.name,
            version=version,
            config=cfg.model_dump(mode="json", by_alias=True),
            config_hash=cfg.hash,
            etag=f"v{version}",
        )


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource()


def test_lookups_from_a_store_url_render_ready_to_call(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = get_store(url)
    registry = Registry(store)
    registry.register("triage", config(), created_by="a")
    registry.register("triage", rich_config(), created_by="a")
    registry.set_label("triage", "production", 2, who="a")
    store.dispose()
    with PromptClient(url, cache_dir=tmp_path / "lkg") as client:
        prompt = client.get("triage")
        assert (prompt.version, prompt.label, prompt.stale) == (2, "production", False)
        assert client.get("triage", version=1).config == config()
        kwargs = prompt.render(text="meh")
    assert kwargs == {
        "model": "openai/fake",
        "temperature": 0.3,
        "max_tokens": 64,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n\n"],
        "api_base": "http://127.0.0.1:9/v1",
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Review: great"},
            {"role": "assistant", "content": '{"label": "positive"}'},
            {"role": "user", "content": "Review: meh"},
        ],
    }
    openai = prompt.render_openai(text="meh")
    assert openai["model"] == "fake" and "api_base" not in openai and openai["seed"] == 7
    with pytest.raises(KeyError, match="text"):
        prompt.render(other="x")


def test_a_constrained_json_prompt_asks_for_its_schema() -> None:
    cfg = config(constrained=True, output={"type": "json", "schema": {"type": "object", "required": ["label"]}})
    from promptopt.sdk import call_params

    assert call_params(cfg)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object", "required": ["label"]}},
    }


def test_within_the_ttl_the_source_is_asked_once_and_pinned_versions_never_again(
    source: ScriptedSource, tmp_path: Path
) -> None:
    client = PromptClient(source, ttl_s=60, cache_dir=tmp_path)
    assert {client.get("triage").version for _ in range(100)} == {1}
    assert {client.get("triage", version=3).version for _ in range(100)} == {3}
    assert source.fetches == [("triage@production", None), ("triage@v3", None)]


def test_past_the_ttl_the_cached_copy_is_served_while_one_refresh_runs(source: ScriptedSource, tmp_path: Path) -> None:
    client = PromptClient(source, ttl_s=0.05, cache_dir=tmp_path)
    assert client.get("triage").version == 1
    source.versions["production"] = 2
    source.gate.clear()  # the registry is now slow
    time.sleep(0.06)
    started = time.monotonic()
    served = [client.get("triage") for _ in range(50)]
    assert time.monotonic() - started < 0.5  # nobody waited for the slow fetch
    assert {p.version for p in served} == {1} and not any(p.stale for p in served)
    wait_until(lambda: len(source.fetches) == 2)
    assert source.fetches[1] == ("triage@production", "v1")  # one refresh, revalidating the copy held
    source.gate.set()
    wait_until(lambda: client.get("triage").version == 2)
    assert len(source.fetches) == 2


def test_a_failed_refresh_keeps_serving_the_copy_marked_stale(source: ScriptedSource, tmp_path: Path) -> None:
    client = PromptClient(source, ttl_s=0.05, cache_dir=tmp_path)
    client.get("triage")
    source.fail = ConnectionError("connection refused")
    time.sleep(0.06)
    client.get("triage")
    wait_until(lambda: client.get("triage").stale)
    prompt = client.get("triage")
    assert prompt.version == 1 and "ConnectionError: connection refused" in prompt.stale_reason
    source.fail = None
    wait_until(lambda: not client.get("triage").stale)  # retried after a short pause; 304 clears the flag
    assert source.fetches[-1] == ("triage@production", "v1")


def test_a_cold_start_with_the_registry_down_serves_the_last_known_good_copy(
    source: ScriptedSource, tmp_path: Path
) -> None:
    PromptClient(source, cache_dir=tmp_path).get("triage")
    saved = list(tmp_path.rglob("*.json"))
    assert [p.name for p in saved] == ["triage@production.json"]
    assert json.loads(saved[0].read_text())["version"] == 1 and not list(tmp_path.rglob("*.tmp"))

    source.fail = TimeoutError("timed out")
    prompt = PromptClient(source, cache_dir=tmp_path).get("triage")  # a new process, in effect
    assert prompt.stale and prompt.version == 1 and prompt.config == config("instruction v1")
    assert "scripted://registry did not answer (TimeoutError: timed out)" in prompt.stale_reason
    assert "last-known-good copy saved at" in prompt.stale_reason
    with pytest.raises(PromptUnavailable, match="no last-known-good copy"):
        PromptClient(source, cache_dir=tmp_path).get("triage", label="staging")
    with pytest.raises(PromptUnavailable, match="keeping none"):
        PromptClient(source, cache_dir=False).get("triage")


def test_not_found_is_an_answer_not_an_outage(source: ScriptedSource, tmp_path: Path) -> None:
    PromptClient(source, cache_dir=tmp_path).get("triage")
    source.fail = NotFound("no prompt named 'triage'")
    with pytest.raises(NotFound):
        PromptClient(source, cache_dir=tmp_path).get("triage")


def test_an_unwritable_cache_dir_does_not_fail_the_lookup(source: ScriptedSource, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    assert PromptClient(source, cache_dir=tmp_path / "file").get("triage").version == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "../x"}, "name"),
        ({"label": "Prod"}, "label"),
        ({"version": 0}, "version"),
        ({"label": "production", "version": 1}, "version"),
    ],
)
def test_bad_references_name_the_field(source: ScriptedSource, kwargs: dict, field: str) -> None:
    with pytest.raises(InputError) as error:
        PromptClient(source, cache_dir=False).get(**{"name": "triage", **kwargs})
    assert error.value.field == field and source.fetches == []


def test_the_sdk_patterns_are_the_registry_patterns() -> None:
    assert (names.NAME_PATTERN, names.LABEL_PATTERN) == (NAME_PATTERN, LABEL_PATTERN)
    assert (sdk_prompt.is_prompt_name, sdk_prompt.is_label) == (names.is_prompt_name, names.is_label)
