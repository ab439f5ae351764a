"""`optimize serve` end to end: the command starts uvicorn on the port asked, with the token from a file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from promptopt.registry import Registry
from promptopt.store import get_store
from tests.registry.helpers import config

# The serve command on an app of its own (cli/app.py wires it into `optimize`).
_CLI = """
import typer
from promptopt.cli import _serve
app = typer.Typer()
_serve.register(app)
@app.callback()
def main() -> None: ...
app()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_starts_with_a_token_file_and_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    store = get_store(url)
    Registry(store).register("greet", config(), created_by="a")
    store.dispose()
    (tmp_path / "token").write_text("file-token-123456\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPTIMIZE_SERVER_TOKEN"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CLI,
            "serve",
            "--port",
            str(port),
            "--store",
            url,
            "--token-file",
            str(tmp_path / "token"),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                versions = httpx.get(f"{base}/v1/prompts/greet/versions")
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        assert [v["version"] for v in versions.json()] == [1]
        moved = httpx.post(
            f"{base}/v1/prompts/greet/labels/production",
            json={"version": 1},
            headers={"Authorization": "Bearer file-token-123456"},
        )
        assert moved.status_code == 200 and moved.json()["to_version"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}" in out and "file-token" not in out
