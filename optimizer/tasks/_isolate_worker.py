"""The child side of an isolated code task (``eval.isolate: true``): import the function once, then run it on
one input at a time, each prompt call sent to the parent, which owns the engine (cache, budget, records).

Started as ``python -P _isolate_worker.py FD SYS_PATH_JSON FUNCTION PROMPT_NAMES_JSON``. Messages are pickled tuples:
to the parent ``("ready", "")`` or ``("fatal", reason)`` once, then per input any number of
``("call", name, variables, history)`` and one ``("done", text)`` or ``("raised", reason)``; from the parent
``("run", input)``, and ``("reply", fields)`` or ``("failed", reason)`` for each call.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any


class PromptCallFailed(Exception):
    """The parent could not answer a prompt call (the model call failed, or the budget ran out)."""


def main(fd: int, sys_path: str, function: str, names: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills us
    conn = Connection(fd)
    sys.path[:] = json.loads(sys_path)
    try:
        from promptopt.tasks import PromptReply, Prompts, load_function, output_text

        fn = load_function(function)
    except BaseException as exc:  # noqa: BLE001 - any failure to start is reported, then we exit
        conn.send(("fatal", getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", ""))

    async def call(name: str, variables: dict[str, Any], history: Any) -> PromptReply:
        conn.send(("call", name, variables, list(history)))
        kind, payload = conn.recv()
        if kind != "reply":
            raise PromptCallFailed(payload)
        return PromptReply.model_validate(payload)

    while True:
        try:
            kind, payload = conn.recv()
        except EOFError:
            return
        if kind != "run":
            continue
        try:
            out = fn(payload, Prompts(names, call))
            if inspect.isawaitable(out):
                out = asyncio.run(_awaited(out))
            conn.send(("done", output_text(out)))
        except BaseException as exc:  # noqa: BLE001 - the function's failure is the row's, not the worker's
            conn.send(("raised", f"{type(exc).__name__}: {exc}"))


async def _awaited(value: Any) -> Any:
    return await value


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
