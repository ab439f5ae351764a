"""PromptLogger: an application logs its model calls (and feedback on them) without ever waiting or failing.

``log()`` scrubs the record and appends it to an in-memory queue; a background thread sends the queue in
batches (``POST /v1/logs:bulk`` and ``/v1/feedback:bulk`` of ``optimize serve``, or straight into a store).
What cannot be sent is written to spool files on local disk (atomically) and sent first once the destination
answers again, by this process or the next one that logs to the same destination.

Light to import: no store, no HTTP client until the first batch leaves, never litellm, ray, optuna or dspy.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from promptopt.names import is_label, is_log_id, is_prompt_name, is_version
from promptopt.secrets import mask_url, scrub_record, scrub_secrets

if TYPE_CHECKING:
    from promptopt.store import Store

log = logging.getLogger("promptopt.sdk")
Scrub = Callable[[dict[str, Any]], dict[str, Any]]
Event = tuple[str, dict[str, Any]]  # ("log" | "feedback", body)
# The limits of promptopt.logs (a test checks they agree): a record the server would refuse is caught here.
_MAX_TEXT = 1_000_000
_MAX_BATCH = 10_000
_FORMAT = 1
_MAX_BACKOFF_S = 30.0


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON (non-finite floats and unknown objects become strings), so that sending and
    spooling never fail on what an application happened to pass."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 50:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def _number(value: Any, kind: type) -> Any:
    """A finite non-negative number of ``kind``, else ``None`` (a bad measurement is not worth losing a log)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _text(value: Any, limit: int = _MAX_TEXT) -> str | None:
    return None if value is None else str(value)[:limit]


def _version(value: Any) -> int | None:
    return value if is_version(value) else None


def _label(value: Any) -> str | None:
    return value if is_label(value) else None


class Rejected(Exception):
    """The destination refused the batch as invalid: sending it again cannot succeed."""


class _Sink:
    """Where batches go. ``send`` raises :class:`Rejected` for an invalid batch; any other exception means
    "not now" (the batch is kept and sent again later)."""

    location: str

    def send(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class _HttpSink(_Sink):
    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.location = url.rstrip("/")
        self._token, self._timeout_s = token, timeout_s
        self._client: Any = None

    def send(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        if self._client is None:
            import httpx  # on the first batch: an application that never logs never loads it

            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            self._client = httpx.Client(base_url=self.location, headers=headers, timeout=self._timeout_s)
        path, key = ("/v1/logs:bulk", "logs") if kind == "log" else ("/v1/feedback:bulk", "feedback")
        response = self._client.post(path, json={key: bodies})
        if response.status_code == 200:
            return
        message = f"HTTP {response.status_code} from {self.location}{path}: {response.text[:300]}"
        if response.status_code in (400, 413, 422):
            raise Rejected(message)
        raise ConnectionError(message)  # 401/403 (a token to fix), 404 (no logs route yet), 429, 5xx: later

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class _StoreSink(_Sink):
    def __init__(self, url_or_store: str | Store) -> None:
        self._url = url_or_store if isinstance(url_or_store, str) else None
        self._store: Any = None if isinstance(url_or_store, str) else url_or_store
        self._logs: Any = None
        self.location = mask_url(url_or_store) if isinstance(url_or_store, str) else str(url_or_store.url)

    def send(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        from pydantic import ValidationError

        from promptopt.errors import InputError
        from promptopt.logs import FeedbackBatch, LogBatch, LogStore

        if self._logs is None:
            if self._store is None:
                from promptopt.store import Store

                assert self._url is not None
                self._store = Store(self._url)
            self._logs = LogStore(self._store)
        try:
            if kind == "log":
                self._logs.add_logs(LogBatch(logs=bodies).logs)  # type: ignore[arg-type]
            else:
                self._logs.add_feedback(FeedbackBatch(feedback=bodies).feedback)  # type: ignore[arg-type]
        except (ValidationError, InputError) as exc:
            raise Rejected(str(exc)) from None

    def close(self) -> None:
        if self._url is not None and self._store is not None:
            self._store.dispose()


class _Spool:
    """Batches that could not be sent, one JSON file each, named so that they sort oldest first.

    A file is written to a temporary name, synced and renamed: a crash leaves a whole file or none. A file
    being sent is locked (``flock``), so two processes sharing the folder do not send it at once; a resend
    after a crash is harmless because the destination ignores ids it has already stored.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = 0

    def write(self, events: list[Event]) -> bool:
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.json"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".spool-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    json.dump({"format": _FORMAT, "events": events}, file, ensure_ascii=False)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, self.folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.error("could not spool %d log event(s) to %s: %s", len(events), self.folder, exc)
            return False
        return True

    def files(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("*.json"))
        except OSError:
            return []

    def pending(self) -> int:
        return len(self.files())


@dataclass
class LoggerStats:
    """Counters of a :class:`PromptLogger` since it started (events are logs and feedback entries)."""

    queued: int = 0
    sent: int = 0
    spooled: int = 0  # events written to spool files (sent later)
    dropped: int = 0
    rejected: int = 0
    spool_files: int = 0
    last_error: str | None = None


class PromptLogger:
    """Logs an application's model calls, and feedback on them, to a promptopt server or a store.

    ``log`` and ``feedback`` return at once: they never block on the network and never raise. Records are
    scrubbed first (``scrub``; API-key patterns and credential-like keys by default), queued in memory (at
    most ``max_queue`` events: past that the oldest is dropped and counted), and sent by a background thread
    every ``flush_interval_s`` or as soon as ``batch_size`` are waiting. A batch that cannot be sent is
    written to ``spool_dir`` and sent first once the destination answers again; a logger started later on the
    same destination sends what an earlier process left there. A batch the destination refuses as invalid
    (HTTP 422) is narrowed down to the bad entries, which are dropped and counted as ``rejected``.

    Example:
        >>> logger = PromptLogger("http://127.0.0.1:8080", token=os.environ["OPTIMIZE_SERVER_TOKEN"])
        >>> log_id = logger.log("support-triage", prompt.version, {"ticket": text}, answer,
        ...                     model=prompt.config.model, latency_s=0.42, tokens=180)  # doctest: +SKIP
        >>> logger.feedback(log_id, label="billing")  # doctest: +SKIP

    Args:
        url_or_store: ``http(s)://`` server URL, a store URL (``sqlite:///...``, ``postgresql://...``) or a
            :class:`~promptopt.store.Store`.
        token: The server's bearer token (``optimize serve`` takes writes only with it).
        batch_size: Events per request.
        flush_interval_s: Longest wait before queued events are sent.
        max_queue: Most events kept in memory.
        spool_dir: Folder of unsent batches (default ``$XDG_CACHE_HOME/promptopt/log-spool/<destination>``);
            ``False`` keeps them in memory only (bounded by ``max_queue``).
        scrub: Applied to each record (``input``, ``output``, ``metadata``... as a dict) before it is queued;
            a scrub that raises drops the record (counted as rejected) rather than keep it unscrubbed.
        timeout_s: Per-request timeout.
    """

    def __init__(self, url_or_store: str | Store, *, token: str | None = None, batch_size: int = 100,
                 flush_interval_s: float = 1.0, max_queue: int = 10_000, spool_dir: str | Path | bool | None = None,
                 scrub: Scrub = scrub_record, timeout_s: float = 5.0) -> None:
        if not 1 <= batch_size <= _MAX_BATCH or max_queue < batch_size or flush_interval_s <= 0:
            raise ValueError(f"need 1 <= batch_size <= {_MAX_BATCH}, max_queue >= batch_size and "
                             f"flush_interval_s > 0")
        http = isinstance(url_or_store, str) and url_or_store.startswith(("http://", "https://"))
        self._sink: _Sink = _HttpSink(url_or_store, token, timeout_s) if http else _StoreSink(url_or_store)  # type: ignore[arg-type]
        self.batch_size, self.flush_interval_s, self.max_queue = batch_size, flush_interval_s, max_queue
        self._scrub = scrub
        self._spool = None if spool_dir is False else _Spool(_spool_folder(spool_dir, self._sink.location))
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._cycle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._cycles = 0
        self._inflight: list[Event] = []
        self._closing = self._closed = False
        self._retry_at, self._backoff_s = 0.0, 0.0
        self.stats = LoggerStats(spool_files=self._spool.pending() if self._spool else 0)
        self._thread = threading.Thread(target=self._run, daemon=True, name="promptopt-logger")
        self._thread.start()
        atexit.register(self.close)

    @property
    def location(self) -> str:
        return self._sink.location

    # -- the application's side: never blocks, never raises ---------------------------------------------------
    def log(self, prompt_name: str, version: int | None, input: Any, output: str | None, *, model: str | None = None,
            latency_s: float | None = None, tokens: int | None = None, cost_usd: float | None = None,
            metadata: dict[str, Any] | None = None, label: str | None = None, id: str | None = None) -> str:
        """Queue one model call; returns its log id (give it to :meth:`feedback`)."""
        log_id = id or uuid.uuid4().hex
        try:
            if not is_prompt_name(prompt_name):
                raise ValueError(f"{prompt_name!r} is not a prompt name")
            if not is_log_id(log_id):
                raise ValueError(f"id {log_id!r} is not an id (letters, digits, '_', '.', ':', '-')")
            body = self._scrub({"input": _jsonable({} if input is None else input), "output": _text(output),
                                "metadata": _jsonable(metadata or {}), "model": _text(model, 200)})
            body.update(id=log_id, prompt=prompt_name, version=_version(version), label=_label(label),
                        latency_s=_number(latency_s, float), tokens=_number(tokens, int),
                        cost_usd=_number(cost_usd, float), created_at=_now())
            self._put(("log", body))
        except Exception as exc:  # an application's logging call must never fail it
            self._reject(f"log of {prompt_name!r} not queued: {exc}")
        return log_id

    def feedback(self, log_id: str, *, score: float | None = None, label: str | None = None,
                 corrected: str | None = None) -> None:
        """Queue feedback on a logged call: a score, a label, a corrected output (the latest entry wins)."""
        try:
            if score is None and label is None and corrected is None:
                raise ValueError("give at least one of score, label or corrected")
            body = self._scrub({"label": _text(label, 200), "corrected": _text(corrected)})
            number = None if score is None else float(score)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"score must be a finite number, not {score!r}")
            body.update(id=uuid.uuid4().hex, log_id=str(log_id), score=number, created_at=_now())
            self._put(("feedback", body))
        except Exception as exc:
            self._reject(f"feedback on {log_id!r} not queued: {exc}")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Send what is queued now; ``True`` when everything logged so far has reached the destination
        (``False``: some of it is still queued or spooled, e.g. the destination is down)."""
        deadline = time.monotonic() + timeout_s
        with self._cycle:
            self._retry_at = 0.0  # try now, even while backing off
            target = self._cycles + 2  # one whole cycle that started after this call
            self._wake.set()
            while self._cycles < target and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cycle.wait(left)
                self._wake.set()
            return not self._queue and self.stats.spool_files == 0

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (spooling what cannot be sent) and stop the background thread. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # the destination hangs: keep the rest on disk rather than lose it
            inflight = self._inflight
            if inflight and self._spool is not None and self._spool.write(inflight):
                self.stats.spooled += len(inflight)  # may reach the destination twice: ids make that harmless
            self._spool_queue()
        self._sink.close()

    def __enter__(self) -> PromptLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, event: Event) -> None:
        with self._lock:
            if self._closing:
                raise RuntimeError("the logger is closed")
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.stats.dropped += 1
                if self.stats.dropped in (1, 10, 100) or self.stats.dropped % 1000 == 0:
                    log.warning("log queue full (%d): dropped the oldest event (%d so far)", self.max_queue,
                                self.stats.dropped)
            self._queue.append(event)
            self.stats.queued += 1
            if len(self._queue) >= self.batch_size:
                self._wake.set()

    def _reject(self, message: str) -> None:
        with self._lock:
            self.stats.rejected += 1
            self.stats.last_error = scrub_secrets(message)[:500]
        log.warning("%s", self.stats.last_error)

    # -- the background thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            closing = self._closing
            try:
                self._step()
            except Exception as exc:  # a bug here must not end logging for the rest of the process
                log.exception("log sender failed: %s", exc)
            with self._cycle:
                self._cycles += 1
                self._cycle.notify_all()
                if closing:
                    self._closed = True
                    return

    def _step(self) -> None:
        if time.monotonic() < self._retry_at:
            self._spool_queue()  # the destination is down: keep memory small, and keep the order on disk
            return
        if not self._send_spooled():
            self._spool_queue()
            return
        while True:
            batch = self._take()
            if not batch:
                break
            self._inflight = batch
            sent = self._send(batch)
            self._inflight = []
            if not sent:
                self._keep(batch)
                self._spool_queue()
                return
        self._backoff_s = 0.0

    def _take(self) -> list[Event]:
        with self._lock:
            return [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]

    def _send(self, events: list[Event]) -> bool:
        """Send ``events`` in order; ``False`` (and nothing after the failure sent) if the destination fails."""
        for kind, bodies in _runs(events):
            try:
                self._send_run(kind, bodies)
            except Exception as exc:
                self._down(exc)
                return False
        return True

    def _send_run(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        try:
            self._sink.send(kind, bodies)
            self.stats.sent += len(bodies)
        except Rejected as exc:
            if len(bodies) == 1:
                self._reject(f"{kind} {bodies[0].get('id')} refused by {self._sink.location}: {exc}")
                return
            half = len(bodies) // 2  # find the bad entries; the good ones around them are stored
            self._send_run(kind, bodies[:half])
            self._send_run(kind, bodies[half:])

    def _send_spooled(self) -> bool:
        if self._spool is None:
            return True
        for path in self._spool.files():
            with _locked(path) as events:
                if events is None:
                    continue
                if not self._send(events):
                    return False
                path.unlink(missing_ok=True)
        self.stats.spool_files = self._spool.pending()
        return True

    def _keep(self, batch: list[Event]) -> None:
        """A batch that could not be sent: to disk, or back to the front of the queue without a spool."""
        if self._spool is not None and self._spool.write(batch):
            self.stats.spooled += len(batch)
            self.stats.spool_files += 1
            return
        with self._lock:
            room = max(0, self.max_queue - len(self._queue))
            kept = batch[len(batch) - room:] if room < len(batch) else batch
            self._queue.extendleft(reversed(kept))
            self.stats.dropped += len(batch) - len(kept)

    def _spool_queue(self) -> None:
        if self._spool is None:
            return
        while True:
            batch = self._take()
            if not batch:
                return
            self._keep(batch)

    def _down(self, exc: BaseException) -> None:
        self._backoff_s = min(_MAX_BACKOFF_S, max(self.flush_interval_s, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s
        self.stats.last_error = scrub_secrets(f"{self._sink.location}: {type(exc).__name__}: {exc}")[:500]
        log.warning("could not send logs (retrying in %.1f s): %s", self._backoff_s, self.stats.last_error)


def _runs(events: list[Event]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Consecutive events of one kind, in order: a log is always sent before feedback queued after it."""
    kind: str | None = None
    bodies: list[dict[str, Any]] = []
    for event_kind, body in events:
        if event_kind != kind and bodies:
            yield kind, bodies  # type: ignore[misc]
            bodies = []
        kind = event_kind
        bodies.append(body)
    if bodies:
        yield kind, bodies  # type: ignore[misc]


class _locked:
    """Open a spool file under an exclusive non-blocking lock; yields its events, or ``None`` when another
    process holds it, it is gone, or it is unreadable (then it is set aside as ``.bad``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def __enter__(self) -> list[Event] | None:
        try:
            self._file = file = open(self.path, encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        except OSError:
            return None
        try:
            import fcntl

            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): resends are idempotent anyway
            pass
        except OSError:
            return None
        if not self.path.exists():  # sent and removed by the process that held the lock before us
            return None
        try:
            data = json.load(file)
            return [(kind, body) for kind, body in data["events"]]
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable spool file %s set aside: %s", self.path, exc)
            self.path.rename(self.path.with_suffix(".bad"))
            return None

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def _spool_folder(spool_dir: str | Path | bool | None, location: str) -> Path:
    if spool_dir is not None and not isinstance(spool_dir, bool):
        return Path(spool_dir)
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promptopt" / "log-spool"
    return root / hashlib.sha256(location.encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat()
