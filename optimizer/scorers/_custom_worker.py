"""The child side of custom scorers: import the user's function once, then answer calls until the pipe closes.

Runs in a separate process so that a scorer that hangs, raises or kills its interpreter fails only its row.
It is started as a plain script (``python -P _custom_worker.py FD BASE_DIR FUNCTION``) and imports only the
standard library: start-up stays fast, and unlike multiprocessing's spawn it never re-runs the parent's main
module (a script without an ``if __name__ == "__main__"`` guard would otherwise start itself again).
Messages to the parent are ``(kind, payload)`` tuples of plain values: ``("ready", "")`` or ``("fatal",
reason)`` once at start, then ``("ok", float)`` or ``("error", reason)`` per call.
"""

from __future__ import annotations

import importlib
import inspect
import numbers
import pickle
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

ARGUMENTS = ("input", "output", "parsed", "expected", "metadata", "trace")


def load_function(base_dir: str, function: str) -> tuple[Callable[..., Any], tuple[str, ...] | None]:
    """Import ``module:function`` with ``base_dir`` first on the path; also return the arguments it takes.

    The second value is None when the function takes ``**kwargs`` (it then gets every argument).

    Raises:
        Exception: the import failed, the name is not a function, or it needs an argument we cannot give.
    """
    module_name, _, attr = function.partition(":")
    sys.path.insert(0, base_dir)
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise TypeError(f"{function} is a {type(fn).__name__}, not a function")
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return fn, None
    unknown = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind is not inspect.Parameter.VAR_POSITIONAL
        and p.name not in ARGUMENTS
    ]
    if unknown:
        raise TypeError(f"{function} requires {unknown}; a scorer can take only {list(ARGUMENTS)}")
    return fn, tuple(p.name for p in params if p.name in ARGUMENTS)


def call(fn: Callable[..., Any], accepted: tuple[str, ...] | None, kwargs: dict[str, Any]) -> tuple[str, Any]:
    """Run one call and turn its outcome into a message; the range check is the parent's."""
    try:
        result = fn(**(kwargs if accepted is None else {k: kwargs[k] for k in accepted}))
    except (Exception, SystemExit) as exc:
        return "error", f"raised {type(exc).__name__}: {exc}"
    if isinstance(result, bool | numbers.Real):
        return "ok", float(result)
    shown = f"{type(result).__name__} {str(result)[:80]!r}"
    return "error", f"returned {shown}; return a float in [0, 1] or a bool"


def serve(conn: Connection, base_dir: str, function: str) -> None:
    """Worker main loop (the target of the child process)."""
    # Ctrl-C reaches the whole process group; the parent decides when workers stop (by closing the pipe).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fn, accepted = load_function(base_dir, function)
    except (Exception, SystemExit) as exc:
        conn.send(("fatal", f"cannot use custom scorer {function} (from {base_dir}): {type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ""))
    while True:
        try:
            kwargs = pickle.loads(conn.recv_bytes())
        except EOFError:
            return
        conn.send(call(fn, accepted, kwargs))


def main(argv: list[str]) -> None:
    """Entry point of the worker script: ``FD BASE_DIR FUNCTION``."""
    fd, base_dir, function = argv
    serve(Connection(int(fd)), base_dir, function)


if __name__ == "__main__":
    main(sys.argv[1:])
