"""The process pool behind custom scorers: long-lived workers for one ``module:function``.

A worker that passes its timeout is killed and replaced; one that dies (``os._exit``, a segfault) is
replaced too. Either way only that row fails, with :class:`ScorerError`. Calls wait in a thread per worker
(``Connection.poll`` with a timeout), which keeps the pool independent of any one event loop. Workers are
plain ``python`` processes (see ``_custom_worker``), not multiprocessing children: no fork of a threaded
parent, and no re-import of the parent's main module.
"""

from __future__ import annotations

import asyncio
import pickle
import queue
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from promptopt.errors import ScorerError
from promptopt.scorers import _custom_worker
from promptopt.tasks import exit_reason

_WORKER_SCRIPT = _custom_worker.__file__


class _Unusable(ScorerError):
    """The function cannot be imported or called at all: every later row would fail the same way."""


class _Worker:
    """One child process and its socket, started on first use and again after a kill or a crash."""

    def __init__(self, base_dir: Path, function: str, startup_timeout_s: float) -> None:
        self._base_dir, self._function = base_dir, function
        self._startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def call(self, payload: bytes, timeout_s: float) -> tuple[str, Any]:
        conn = self._conn if self._conn is not None else self._start()
        try:
            conn.send_bytes(payload)
            if not conn.poll(timeout_s):
                self.stop()
                raise ScorerError(
                    f"custom scorer {self._function} timed out after {timeout_s:g} s; "
                    "its worker was killed and will be replaced"
                )
            reply: tuple[str, Any] = conn.recv()
            return reply
        except (EOFError, OSError) as exc:
            raise ScorerError(
                f"custom scorer {self._function} crashed ({self._reap()}); its worker will be replaced"
            ) from exc

    def kill(self) -> None:
        """Kill the process now; safe from any thread (the caller waiting on it sees the socket close)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def stop(self) -> None:
        """Kill the process, reap it and close the socket; the next call starts a fresh worker."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            proc.kill()  # SIGKILL: a hung function may well ignore SIGTERM
            proc.wait()
        if conn is not None:
            conn.close()

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        with theirs:  # closed here once the child has its copy, so the child's death reads as EOF
            # -P: do not put the worker's own folder on sys.path, where it could shadow the user's modules.
            # The function's prints go to our stderr: stdout may be a report or JSON being written.
            argv = [sys.executable, "-P", _WORKER_SCRIPT, str(theirs.fileno()), str(self._base_dir), self._function]
            self._proc = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=2)
        self._conn = conn = Connection(ours.detach())
        try:
            ready = conn.poll(self._startup_timeout_s)
            kind, message = conn.recv() if ready else ("fatal", "")
        except (EOFError, OSError) as exc:
            # Dying while importing the function would happen again on every start: give up on it.
            raise _Unusable(f"custom scorer {self._function} crashed while being imported ({self._reap()})") from exc
        if kind != "ready":
            self.stop()
            raise _Unusable(
                message
                or f"custom scorer {self._function} did not start within "
                f"{self._startup_timeout_s:g} s (is its import slow or stuck?)"
            )
        return conn

    def _reap(self) -> str:
        """Stop a worker whose socket closed and say how it ended."""
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(2)  # it is exiting; wait a moment so the exit code is known
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        return exit_reason(code)


class WorkerPool:
    """A fixed number of workers for one function, each used by one call at a time.

    Args:
        base_dir: Folder put first on the workers' ``sys.path`` (the spec's folder).
        function: ``module:function``.
        size: Number of worker processes (started as calls need them).
        startup_timeout_s: Time a new worker has to import the function (not counted in a call's timeout).
    """

    def __init__(self, base_dir: Path, function: str, *, size: int, startup_timeout_s: float = 60.0) -> None:
        self._workers = [_Worker(base_dir, function, startup_timeout_s) for _ in range(size)]
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)
        # As many threads as workers: a call never waits for a worker, only (in the executor) for a thread.
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="promptopt-scorer")
        self._unusable: str | None = None
        self._closed = False

    async def call(self, kwargs: dict[str, Any], timeout_s: float) -> float:
        """Run the function on ``kwargs`` in a worker and return its number (not yet range-checked).

        Raises:
            ScorerError: timeout, crash, an exception in the function, or a value that is not a number.
        """
        try:
            payload = pickle.dumps(kwargs)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ScorerError(f"the row cannot be sent to the custom scorer: {exc}") from exc
        if self._closed:
            raise ScorerError("the custom scorer was closed")
        loop = asyncio.get_running_loop()
        kind, value = await loop.run_in_executor(self._executor, self._call, payload, timeout_s)
        if kind != "ok":
            raise ScorerError(str(value))
        return float(value)

    def _call(self, payload: bytes, timeout_s: float) -> tuple[str, Any]:
        if self._unusable is not None:
            raise ScorerError(self._unusable)
        if self._closed:
            raise ScorerError("the custom scorer was closed")
        worker = self._idle.get()
        try:
            return worker.call(payload, timeout_s)
        except _Unusable as exc:
            self._unusable = str(exc)
            raise
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """Stop every worker (blocking); later calls raise :class:`ScorerError`. Safe to call twice."""
        self._closed = True
        for worker in self._workers:
            worker.kill()  # wakes any call waiting on it, which then reaps the worker itself
        self._executor.shutdown(wait=True, cancel_futures=True)
        for worker in self._workers:
            worker.stop()  # no call is running now; also catches a worker started during shutdown
