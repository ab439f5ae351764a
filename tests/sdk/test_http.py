"""The SDK against a real server: a cold start with the server stopped serves the last-known-good copy, ETag
revalidation, and lookups that never import the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.errors import NotFound
from promptopt.sdk import HttpSource, PromptClient, PromptRef, PromptUnavailable
from tests.server.helpers import served

HEAVY = ["ray", "optuna", "dspy", "litellm"]


def test_a_cold_start_with_the_server_stopped_serves_the_last_known_good_copy(tmp_path: Path) -> None:
    with served(tmp_path / "server") as server:
        url = server.url
        with PromptClient(url, cache_dir=tmp_path / "lkg") as client:
            live = client.get("support-triage")
            assert not live.stale and live.version == 1
            with pytest.raises(NotFound, match="no label 'canary'"):
                client.get("support-triage", label="canary")
    # The server is gone; a new process (a new client) starts.
    with PromptClient(url, cache_dir=tmp_path / "lkg", timeout_s=2) as client:
        cold = client.get("support-triage")
        assert cold.stale and cold.version == live.version and cold.config == live.config
        assert f"{url} did not answer (ConnectError" in cold.stale_reason
        assert cold.render(text="great")["messages"][-1] == {"role": "user", "content": "Review: great"}
        with pytest.raises(PromptUnavailable, match="no last-known-good copy"):
            client.get("support-triage", label="staging")


def test_revalidation_sends_the_etag_and_gets_304(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        source = HttpSource(server.url)
        ref = PromptRef.of("support-triage")
        fetched = source.fetch(ref)
        assert fetched.version == 1 and fetched.etag
        assert source.fetch(ref, fetched.etag) is None  # 304: nothing moved
        server.registry.set_label("support-triage", "production", 2, who="test")
        assert source.fetch(ref, fetched.etag).version == 2
        source.close()


_LOOKUP = """
import json, sys
from promptopt.sdk import PromptClient
prompt = PromptClient(sys.argv[1], cache_dir=sys.argv[2]).get("support-triage", label="staging")
kwargs = prompt.render(text="fine")
print(json.dumps({"version": prompt.version, "model": kwargs["model"],
                  "heavy": [m for m in sys.argv[3].split(",") if m in sys.modules]}))
"""


@pytest.mark.parametrize("kind", ["http", "store"])
def test_a_lookup_imports_none_of_the_heavy_libraries(tmp_path: Path, kind: str) -> None:
    with served(tmp_path / "server") as server:
        target = server.url if kind == "http" else server.store.url
        run = subprocess.run(
            [sys.executable, "-c", _LOOKUP, target, str(tmp_path / "lkg"), ",".join(HEAVY)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"version": 2, "model": "openai/fake", "heavy": []}
