"""A loopback fake of OpenAI's fine-tuning API, with a chat endpoint that serves the models it "trains".

For tests only: it binds 127.0.0.1 and implements what litellm's ``acreate_file``, ``afile_retrieve``,
``acreate_fine_tuning_job``, ``aretrieve_fine_tuning_job``, ``alist_fine_tuning_jobs`` and
``acancel_fine_tuning_job`` call (through the ``openai`` SDK) with ``custom_llm_provider="openai"`` and
``api_base`` = :attr:`FakeFineTuneServer.url`:

* ``POST /v1/files`` (multipart: ``file``, ``purpose``) and ``GET /v1/files/{id}``;
* ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs`` (``limit``, ``after``; newest first),
  ``GET /v1/fine_tuning/jobs/{id}`` and ``POST /v1/fine_tuning/jobs/{id}/cancel``;
* ``POST /v1/chat/completions``, answered by ``answer(model, messages)``.

Each job follows a :class:`JobScript`: every retrieve is one poll, ``validating_files`` -> ``queued`` ->
``running`` ... -> the scripted end at poll ``polls`` (``succeeded`` with ``fine_tuned_model =
ft:<model>:<suffix>:<id>`` and ``trained_tokens``, ``failed`` with an error object, or ``cancelled``).
``trained_tokens`` is the uploaded file's whitespace-separated words times ``n_epochs``. Every request is
counted by endpoint (:attr:`FakeFineTuneServer.counts`), and uploads and job bodies are kept for inspection.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from promptopt.testing._fake_server import keyword_answer

TunedAnswer = Callable[[str, list[dict[str, Any]]], str]  # (model as sent, messages) -> text


def base_or_tuned(tuned: Callable[[list[dict[str, Any]]], str]) -> TunedAnswer:
    """An answer function: ``tuned`` for a fine-tuned model (``ft:...``), :func:`keyword_answer` otherwise."""
    return lambda model, messages: tuned(messages) if model.startswith("ft:") else keyword_answer(messages)


@dataclass(frozen=True)
class JobScript:
    """How a job ends: ``end`` at its ``polls``-th retrieve (at least 1)."""

    end: Literal["succeeded", "failed", "cancelled"] = "succeeded"
    polls: int = 2
    error: str = "training file has an invalid row"

    def status(self, poll: int) -> str:
        if poll >= self.polls:
            return self.end
        return "queued" if poll <= 1 else "running"


class FakeFineTuneServer:
    """Example::

    with FakeFineTuneServer(script=JobScript(polls=3)) as server:
        litellm.create_file(file=("d.jsonl", b"..."), purpose="fine-tune", api_base=server.url, api_key="x")
    """

    def __init__(
        self, *, script: JobScript = JobScript(), answer: TunedAnswer = base_or_tuned(keyword_answer), port: int = 0
    ) -> None:
        self.script, self.answer = script, answer
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.files: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.job_bodies: list[dict[str, Any]] = []
        self.chat_models: Counter[str] = Counter()
        self._scripts: dict[str, JobScript] = {}
        self._polls: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def rows(self, file_id: str) -> list[dict[str, Any]]:
        """The uploaded JSONL file ``file_id``, one dict per line."""
        return [json.loads(line) for line in self.uploads[file_id].decode().splitlines() if line.strip()]

    def start(self) -> FakeFineTuneServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeFineTuneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- endpoints (called under the lock) ---

    def upload(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1}"
        self.uploads[file_id] = data
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        return self.files[file_id]

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("training_file") not in self.files:
            return 400, _error(f"invalid training_file: {body.get('training_file')!r}", "invalid_request_error")
        self.job_bodies.append(body)
        job_id = f"ftjob-{len(self.jobs) + 1}"
        self._scripts[job_id] = self.script
        hyper = body.get("hyperparameters") or {}
        self.jobs[job_id] = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(time.time()) + len(self.jobs),  # strictly increasing: "newest first" is defined
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {
                "n_epochs": hyper.get("n_epochs", "auto"),
                "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"),
                "batch_size": hyper.get("batch_size", "auto"),
            },
            "model": body["model"],
            "organization_id": "org-fake",
            "result_files": [],
            "seed": body.get("seed") or 0,
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": None,
            "metadata": body.get("metadata"),
            "suffix": body.get("suffix"),  # not in OpenAI's job object; kept here for tests, never read by clients
        }
        return 200, self.public(job_id)

    def poll(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return self.public(job_id)
        self._polls[job_id] += 1
        status = self._scripts[job_id].status(self._polls[job_id])
        job["status"] = status
        if status == "succeeded":
            epochs = job["hyperparameters"]["n_epochs"]
            words = sum(
                len(str(m.get("content", "")).split()) for r in self.rows(job["training_file"]) for m in r["messages"]
            )
            job["trained_tokens"] = words * (epochs if isinstance(epochs, int) else 1)
            job["fine_tuned_model"] = f"ft:{job['model']}:{job['suffix'] or 'fake'}:{job_id}"
        if status == "failed":
            job["error"] = {"code": "invalid_training_file", "message": self._scripts[job_id].error, "param": None}
        if status in ("succeeded", "failed", "cancelled"):
            job["finished_at"] = int(time.time())
        return self.public(job_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        if job["status"] not in ("succeeded", "failed", "cancelled"):
            job["status"], job["finished_at"] = "cancelled", int(time.time())
        return self.public(job_id)

    def listing(self, limit: int, after: str | None) -> dict[str, Any]:
        ids = sorted(self.jobs, key=lambda i: self.jobs[i]["created_at"], reverse=True)
        start = ids.index(after) + 1 if after in ids else 0
        page = ids[start : start + limit]
        return {"object": "list", "data": [self.public(i) for i in page], "has_more": start + limit < len(ids)}

    def public(self, job_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.jobs[job_id].items() if k != "suffix"}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Form fields and files (name -> (filename, bytes)) of a ``multipart/form-data`` body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[name] = data.decode()
        else:
            files[name] = (filename, data)
    return fields, files


def _handler(server: FakeFineTuneServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")  # v1, fine_tuning, jobs[, id] | v1, files, id
            with server._lock:
                if parts[1:3] == ["fine_tuning", "jobs"] and len(parts) == 3:
                    server.counts["jobs.list"] += 1
                    query = parse_qs(url.query)
                    limit = int(query.get("limit", ["20"])[0])
                    self._send(200, server.listing(limit, query.get("after", [None])[0]))
                elif parts[1:3] == ["fine_tuning", "jobs"] and len(parts) == 4 and parts[3] in server.jobs:
                    server.counts["jobs.retrieve"] += 1
                    self._send(200, server.poll(parts[3]))
                elif parts[1] == "files" and len(parts) == 3 and parts[2] in server.files:
                    server.counts["files.retrieve"] += 1
                    self._send(200, server.files[parts[2]])
                else:
                    self._send(404, _error(f"no such resource: {url.path}", "invalid_request_error"))

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            parts = urlsplit(self.path).path.strip("/").split("/")
            with server._lock:
                if parts[1:] == ["files"]:
                    server.counts["files.create"] += 1
                    fields, files = _multipart(self.headers["Content-Type"], raw)
                    filename, data = files["file"]
                    self._send(200, server.upload(filename, fields.get("purpose", ""), data))
                elif parts[1:] == ["fine_tuning", "jobs"]:
                    server.counts["jobs.create"] += 1
                    self._send(*server.create(json.loads(raw)))
                elif parts[1:3] == ["fine_tuning", "jobs"] and parts[4:] == ["cancel"] and parts[3] in server.jobs:
                    server.counts["jobs.cancel"] += 1
                    self._send(200, server.cancel(parts[3]))
                elif parts[1:] == ["chat", "completions"]:
                    server.counts["chat"] += 1
                    payload = json.loads(raw)
                    server.chat_models[payload["model"]] += 1
                    self._send(200, _completion(payload["model"], server.answer(payload["model"], payload["messages"])))
                else:
                    self._send(404, _error(f"no such resource: {self.path}", "invalid_request_error"))

    return Handler


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1 + len(text.split())},
    }
