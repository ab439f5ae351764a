"""The logger's queue and the background thread that empties it.

Events wait in a bounded in-memory queue (past ``max_queue`` the oldest is dropped and counted). The thread
wakes every ``flush_interval_s``, or as soon as ``batch_size`` events wait, and sends them in batches: first
what the spool holds, oldest first, then the queue. A batch the destination cannot take now goes to the spool
(or back to the front of the queue without one) and the destination is retried with exponential backoff; a
batch it refuses as invalid is halved until the bad entries are found, which are dropped and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from promptopt.sdk._log_records import Event
from promptopt.sdk._log_sinks import Rejected, Sink
from promptopt.sdk._log_spool import LockedSpoolFile, Spool
from promptopt.secrets import scrub_secrets

log = logging.getLogger("promptopt.sdk")
_MAX_BACKOFF_S = 30.0


@dataclass
class LoggerStats:
    """Counters of a :class:`~promptopt.sdk.PromptLogger` since it started (events are logs and feedback
    entries)."""

    queued: int = 0
    sent: int = 0
    spooled: int = 0  # events written to spool files (sent later)
    dropped: int = 0
    rejected: int = 0
    spool_files: int = 0
    last_error: str | None = None


class Sender:
    """Queues events and sends them from a daemon thread (started here) to ``sink``, spooling to ``spool``.

    Contract: :meth:`put` and :meth:`reject` never block on the network; :meth:`flush` waits for one whole
    sending cycle; :meth:`close` stops the thread, keeps on disk what it could not send, closes the sink.
    """

    def __init__(
        self, sink: Sink, spool: Spool | None, *, batch_size: int, flush_interval_s: float, max_queue: int
    ) -> None:
        self._sink, self._spool = sink, spool
        self.batch_size, self.flush_interval_s, self.max_queue = batch_size, flush_interval_s, max_queue
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._cycle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._cycles = 0
        self._inflight: list[Event] = []
        self._closing = self._closed = False
        self._retry_at, self._backoff_s = 0.0, 0.0
        self.stats = LoggerStats(spool_files=spool.pending() if spool else 0)
        self._thread = threading.Thread(target=self._run, daemon=True, name="promptopt-logger")
        self._thread.start()

    # -- the application's side ----------------------------------------------------------------------------
    def put(self, event: Event) -> None:
        """Queue ``event`` (dropping the oldest when full).

        Raises:
            RuntimeError: the sender is closed.
        """
        with self._lock:
            if self._closing:
                raise RuntimeError("the logger is closed")
            if len(self._queue) >= self.max_queue:
                self._queue.popleft()
                self.stats.dropped += 1
                if self.stats.dropped in (1, 10, 100) or self.stats.dropped % 1000 == 0:
                    log.warning(
                        "log queue full (%d): dropped the oldest event (%d so far)", self.max_queue, self.stats.dropped
                    )
            self._queue.append(event)
            self.stats.queued += 1
            if len(self._queue) >= self.batch_size:
                self._wake.set()

    def reject(self, message: str) -> None:
        """Count an event that will never be sent, and say why (scrubbed) in the log and ``last_error``."""
        with self._lock:
            self.stats.rejected += 1
            self.stats.last_error = scrub_secrets(message)[:500]
        log.warning("%s", self.stats.last_error)

    def flush(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) for a whole sending cycle that started after this call; ``True`` when
        nothing is left queued or spooled."""
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

    def close(self, timeout_s: float) -> bool:
        """Send what is queued (spooling what cannot be sent), stop the thread and close the sink; ``False``
        when it was closed already."""
        with self._lock:
            if self._closing:
                return False
            self._closing = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # the destination hangs: keep the rest on disk rather than lose it
            inflight = self._inflight
            if inflight and self._spool is not None and self._spool.write(inflight):
                self.stats.spooled += len(inflight)  # may reach the destination twice: ids make that harmless
            self._spool_queue()
        self._sink.close()
        return True

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
                self.reject(f"{kind} {bodies[0].get('id')} refused by {self._sink.location}: {exc}")
                return
            half = len(bodies) // 2  # find the bad entries; the good ones around them are stored
            self._send_run(kind, bodies[:half])
            self._send_run(kind, bodies[half:])

    def _send_spooled(self) -> bool:
        if self._spool is None:
            return True
        for path in self._spool.files():
            with LockedSpoolFile(path) as events:
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
            kept = batch[len(batch) - room :] if room < len(batch) else batch
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
