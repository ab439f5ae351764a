"""A loopback OpenAI-compatible chat server with a fixed latency and injected failures.

For tests and benchmarks only: it binds 127.0.0.1, answers ``POST /v1/chat/completions`` with text from an
answer function, and counts every request (and how often each distinct body was seen).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[list[dict[str, Any]]], str]


def keyword_answer(messages: list[dict[str, Any]]) -> str:
    """Default answer: "positive" when the last user message has a positive-looking word, else "negative"."""
    text = str(messages[-1].get("content", "")).lower()
    return "positive" if any(w in text for w in ("good", "great", "love", "best", "wonderful")) else "negative"


class FakeOpenAIServer:
    """Example::

    with FakeOpenAIServer(latency_s=0.05) as server:
        litellm.completion(model="openai/fake", api_base=server.url, api_key="x", messages=[...])
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fail_rate: float = 0.0,
        fail_status: int = 429,
        retry_after: float | None = 0.05,
        answer: Answer = keyword_answer,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        self.latency_s, self.fail_rate, self.fail_status = latency_s, fail_rate, fail_status
        self.retry_after, self.answer = retry_after, answer
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.failures = 0
        self.bodies: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(raw or b"{}")
                fail = server._enter(raw)
                try:
                    if server.latency_s:
                        time.sleep(server.latency_s)
                    if fail:
                        headers = {"Retry-After": str(server.retry_after)} if server.retry_after is not None else {}
                        self._send(
                            server.fail_status,
                            {"error": {"message": "injected failure", "type": "rate_limit_error"}},
                            headers,
                        )
                        return
                    text = server.answer(payload.get("messages", []))
                    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in payload.get("messages", []))
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-fake",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": payload.get("model", "fake"),
                            "choices": [
                                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                            ],
                            "usage": {
                                "prompt_tokens": prompt_tokens,
                                "completion_tokens": len(text.split()),
                                "total_tokens": prompt_tokens + len(text.split()),
                            },
                        },
                    )
                finally:
                    server._leave()

        return Handler

    def _enter(self, raw: bytes) -> bool:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            body = json.loads(raw or b"{}")
            body.pop("stream", None)
            self.bodies[hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()] += 1
            fail = self._rng.random() < self.fail_rate
            self.failures += fail
            return fail

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python -m promptopt.testing._fake_server --port 8999 --latency 0.05``: serve until killed, and
    write request counts to ``--stats FILE`` every 0.2 s."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--stats", default=None)
    args = parser.parse_args()
    server = FakeOpenAIServer(latency_s=args.latency, fail_rate=args.fail_rate, port=args.port).start()
    print(server.url, flush=True)
    while True:
        time.sleep(0.2)
        if args.stats:
            with open(args.stats + ".tmp", "w") as f:
                json.dump({"requests": server.requests, "bodies": dict(server.bodies)}, f)
            import os

            os.replace(args.stats + ".tmp", args.stats)


if __name__ == "__main__":
    main()
