"""A fake OpenAI-compatible server on 127.0.0.1 that acts as the model name says, and one event loop.

``openai/ok`` answers, ``openai/status-429`` fails with that status (and a ``Retry-After: 2`` header), and so
on; every request body and header is recorded so tests assert what crossed the boundary.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

SECRET_KEY = "sk-test-SECRET123"


@dataclass
class FakeServer:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    def bodies(self, model: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["body"].get("model") == model]


def _answer(model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": f"answer from {model}"}
    if model == "null-content":
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
            ],
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.server.record.requests.append({"body": body, "headers": dict(self.headers)})
        model = body.get("model", "")
        status, headers = 200, {}
        if model == "slow":
            time.sleep(3)
        if model.startswith("status-"):
            status = int(model.split("-")[1])
            # A careless provider echoing the credential back, to prove we scrub it.
            payload = {"error": {"message": f"refused {self.headers.get('authorization')}", "code": status}}
            if model == "status-429":
                headers["Retry-After"] = "2"
            if model == "status-429-date":
                headers["Retry-After"] = email.utils.formatdate(time.time() + 5, usegmt=True)
        else:
            payload = _answer(model)
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json", "content-length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.record = FakeServer(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.record
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)


@pytest.fixture(scope="session")
def run() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """Run a coroutine on one loop for the session, as the engine does (litellm caches clients per loop).

    The Runner cancels what is left on close (litellm's logging task), which a bare ``loop.close()`` does not.
    """
    with asyncio.Runner() as runner:
        yield runner.run
