"""``eval.isolate: true``: a code task's function run in worker processes, with a timeout.

The function is the user's code; isolated, a function that hangs, leaks memory or kills its interpreter
fails only its row. Each worker runs one input at a time; its prompt calls come back to this process, which
sends them through the engine as for an in-process function (cache, budget, limiter, records), so the
isolated and the in-process run of a case make the same calls. The timeout counts the function's own time,
not the time its prompt calls wait for a model. A worker that times out or dies is replaced.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import weakref
from multiprocessing.connection import Connection
from typing import Any, Literal

from promptopt.errors import OptimizeError
from promptopt.tasks import _isolate_worker
from promptopt.tasks._prompts import Prompts
from promptopt.tasks._trace import PromptReply

STARTUP_TIMEOUT_S = 60.0


class IsolatedTaskError(OptimizeError):
    """The function raised, timed out, crashed or could not start in its worker (``kind``); the row fails with
    this message, which names the function."""

    def __init__(self, message: str, *, kind: Literal["raised", "timeout", "crash", "start"]) -> None:
        super().__init__(message)
        self.kind = kind


def exit_reason(code: int | None) -> str:
    """How a child process ended, from its return code (``-9``: killed by SIGKILL)."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _ended(proc: subprocess.Popen[bytes]) -> str:
    try:
        return exit_reason(proc.wait(2))
    except subprocess.TimeoutExpired:
        return "still running"


class _Worker:
    def __init__(self, function: str, names: list[str]) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            argv = [
                sys.executable,
                "-P",  # the worker's own folder first on sys.path could shadow the user's modules
                _isolate_worker.__file__,
                str(theirs.fileno()),
                json.dumps(sys.path),
                function,
                json.dumps(names),
            ]
            # The function's prints go to our stderr: stdout may be a report or JSON being written.
            self.proc = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=2)
        self.conn = Connection(ours.detach())
        self.ready = False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()


async def _recv(conn: Connection, timeout_s: float) -> Any:
    """The next message, waiting at most ``timeout_s`` without blocking the event loop."""
    if not conn.poll(0):
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(conn.fileno(), wake)
        try:
            await asyncio.wait_for(readable, timeout_s)
        finally:
            loop.remove_reader(conn.fileno())
    return conn.recv()


class IsolatedFunction:
    """A task function run in up to ``size`` worker processes, each input timed out after ``timeout_s`` of
    the function's own time. Call it as the function itself: ``await isolated(input, prompts)``.

    A prompt call that fails in this process (a failed model call, the budget) is told to the function as an
    exception; the caller of the prompts (the engine's ``run_case``) keeps the failure and fails the row, as it
    does for an in-process function.

    Raises (from a call):
        IsolatedTaskError: the function raised, timed out, crashed, or cannot start (import failed).
    """

    def __init__(self, function: str, names: list[str], *, size: int, timeout_s: float) -> None:
        self.function, self.names, self.timeout_s = function, list(names), timeout_s
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._size = size
        self._all: list[_Worker] = []
        weakref.finalize(self, _stop_all, self._all)

    async def __call__(self, input: dict[str, Any], prompts: Prompts) -> str:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._size):
                self._idle.put_nowait(None)  # a free slot: a worker is started on first use
        idle = self._idle
        worker = await idle.get()
        try:
            worker = worker if worker is not None else await self._start()
            return await self._run(worker, input, prompts)
        finally:
            idle.put_nowait(worker if worker in self._all else None)  # a stopped worker's slot starts afresh

    async def _start(self) -> _Worker:
        worker = _Worker(self.function, self.names)
        self._all.append(worker)
        try:
            kind, message = await _recv(worker.conn, STARTUP_TIMEOUT_S)
        except BaseException as exc:
            self._drop(worker)  # cancelled while starting, or never ready: no process outlives this call
            if not isinstance(exc, TimeoutError | EOFError | OSError):
                raise
            raise IsolatedTaskError(
                f"task function {self.function} did not start in its worker within {STARTUP_TIMEOUT_S:g} s",
                kind="start",
            ) from None
        if kind != "ready":
            self._drop(worker)
            raise IsolatedTaskError(
                f"task function {self.function} cannot start in its worker: {message}", kind="start"
            )
        return worker

    async def _run(self, worker: _Worker, input: dict[str, Any], prompts: Prompts) -> str:
        """One input in ``worker``; returns the output text. A worker that did not finish the input (timeout,
        crash, cancellation) is stopped: its state is unknown."""
        left, finished = self.timeout_s, False
        try:
            worker.conn.send(("run", input))
            while True:
                started = asyncio.get_running_loop().time()
                message = await _recv(worker.conn, left)
                left -= asyncio.get_running_loop().time() - started
                if message[0] == "call":
                    _, name, variables, history = message
                    try:
                        reply: PromptReply = await prompts[name](history, **variables)
                        worker.conn.send(("reply", reply.model_dump(mode="json")))
                    except Exception as exc:  # noqa: BLE001 - told to the function; the caller keeps it
                        worker.conn.send(("failed", f"{type(exc).__name__}: {exc}"))
                    continue
                finished = True
                if message[0] == "raised":
                    raise IsolatedTaskError(f"task function {self.function} failed: {message[1]}", kind="raised")
                return str(message[1])
        except TimeoutError:
            raise IsolatedTaskError(
                f"task function {self.function} timed out after {self.timeout_s:g} s of its own time "
                "(eval.task_timeout_s); its worker was killed",
                kind="timeout",
            ) from None
        except (EOFError, OSError):
            raise IsolatedTaskError(
                f"task function {self.function} crashed ({_ended(worker.proc)})", kind="crash"
            ) from None
        finally:
            if not finished:
                self._drop(worker)

    def _drop(self, worker: _Worker) -> None:
        worker.stop()
        if worker in self._all:
            self._all.remove(worker)

    def close(self) -> None:
        """Stop every worker (the next call starts new ones)."""
        _stop_all(self._all)
        self._idle = None


def _stop_all(workers: list[_Worker]) -> None:
    for worker in list(workers):
        worker.stop()
    workers.clear()
