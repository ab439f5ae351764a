"""Finding a code task's function from its import path, and the hash of its code."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from promptopt.errors import InputError
from promptopt.tasks._prompts import TaskFunction

_SOURCE_HASH = "__promptopt_source_hash__"  # set on a task's module when it is imported: the code that runs


def importable_from(base_dir: Path) -> None:
    """Let ``import`` find modules beside the spec (as ``python spec_dir/...`` would): ``base_dir`` first on
    ``sys.path`` (moved there if it was further down)."""
    entry = str(Path(base_dir).resolve())
    if sys.path[:1] != [entry]:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def load_function(
    path: str, *, file: str = "", field: str = "task.function", base_dir: Path | None = None
) -> TaskFunction:
    """The function ``package.module:function`` names. A module imported before is imported again when its
    file changed since, or (with ``base_dir``, the spec's folder) when another spec's module of the same name
    was imported first: a long-lived process (the scheduler, the server) runs the code on disk.

    Raises:
        InputError: the module cannot be imported, has no such attribute, or it is not a function of two
            positional arguments ``(input, prompts)``; the message names ``file`` and ``field``.
    """
    module_name, _, attr = path.partition(":")
    try:
        module = _current_module(module_name, base_dir)
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


def _current_module(name: str, base_dir: Path | None) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None and (_edited(module) or _shadowed(module, name, base_dir)):
        if base_dir is not None:
            importable_from(base_dir)
        del sys.modules[name]  # imported again below, from the file as it is now
    module = importlib.import_module(name)
    if getattr(module, _SOURCE_HASH, None) is None:
        setattr(module, _SOURCE_HASH, _file_hash(module))
    return module


def _edited(module: ModuleType) -> bool:
    known = getattr(module, _SOURCE_HASH, None)
    return known is not None and known != _file_hash(module)


def _shadowed(module: ModuleType, name: str, base_dir: Path | None) -> bool:
    """Another folder's module of this name was imported, while the spec's folder has its own."""
    if base_dir is None or getattr(module, "__file__", None) is None:
        return False
    stem = Path(base_dir).resolve() / name.replace(".", "/")
    own = next((p for p in (stem.with_suffix(".py"), stem / "__init__.py") if p.is_file()), None)
    return own is not None and Path(str(module.__file__)).resolve() != own


def _file_hash(module: ModuleType) -> str | None:
    file = getattr(module, "__file__", None)
    try:
        return hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16] if file else None
    except OSError:
        return None


def code_hash(fn: Any) -> str:
    """A hash of the source of the module that defines ``fn``, as it was when it was imported (its function's
    bytecode when there is no source file), so that a changed function makes new candidates, new experiments
    and cache-free rows. Helpers in other modules are not covered: put what changes answers in the task's
    module."""
    module = inspect.getmodule(fn)
    known = getattr(module, _SOURCE_HASH, None) if module is not None else None
    if known is None and module is not None:
        known = _file_hash(module)
    if known is not None:
        return str(known)
    code = getattr(fn, "__code__", None)
    data = code.co_code if code is not None else repr(fn).encode()
    return hashlib.sha256(data).hexdigest()[:16]
