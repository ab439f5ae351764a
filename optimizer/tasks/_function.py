"""Finding a code task's function from its import path, and the hash of its code."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, cast

from promptopt.errors import InputError
from promptopt.tasks._prompts import TaskFunction


def importable_from(base_dir: Path) -> None:
    """Let ``import`` find modules beside the spec (as ``python spec_dir/...`` would): ``base_dir`` first on
    ``sys.path``, once."""
    entry = str(Path(base_dir).resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)


def load_function(path: str, *, file: str = "", field: str = "task.function") -> TaskFunction:
    """The function ``package.module:function`` names.

    Raises:
        InputError: the module cannot be imported, has no such attribute, or it is not a function of two
            positional arguments ``(input, prompts)``; the message names ``file`` and ``field``.
    """
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code is a spec problem
        raise InputError(file, field, f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise InputError(file, field, f"module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise InputError(file, field, f"{path} is not a function (it is a {type(fn).__name__})")
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        raise InputError(
            file,
            field,
            f"{path} must take two positional arguments, (input, prompts); its signature is {inspect.signature(fn)}",
        ) from None
    except ValueError:
        pass  # a builtin without a signature: trust it
    return cast(TaskFunction, fn)


def code_hash(fn: Any) -> str:
    """A hash of the source of the module that defines ``fn`` (its function's bytecode when the source is not
    available), so that a changed function makes new candidates, new experiments and new cache-free rows.
    Helpers in other modules are not covered: put what changes answers in the task's module."""
    module = inspect.getmodule(fn)
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(fn)
        data = source.encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        data = code.co_code if code is not None else repr(fn).encode()
    return hashlib.sha256(data).hexdigest()[:16]
