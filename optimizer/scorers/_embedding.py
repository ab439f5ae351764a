"""Embedding scorer: cosine similarity of answer and reference with the bundled WordLlama model, offline.

This is the only module that imports ``wordllama``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from promptopt.errors import ScorerError
from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer, answer, as_text, require_expected
from promptopt.spec import EmbeddingSpec

_CONFIG = "l2_supercat"
_TOKENIZER = f"{_CONFIG}_tokenizer_config.json"
# One loaded model per cache folder per process: loading costs ~0.2 s and the model is read-only.
_MODELS: dict[Path, Any] = {}
_LOAD_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    """``$PROMPTOPT_CACHE_DIR/wordllama``, else ``~/.cache/promptopt/wordllama``."""
    root = os.environ.get("PROMPTOPT_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "promptopt") / "wordllama"


def _stage_tokenizer(cache_dir: Path) -> None:
    # wordllama 0.4.0.post1 ships its tokenizer but looks for it in a folder that does not exist (tokenizer/
    # instead of tokenizers/), then downloads. A copy in <cache_dir>/tokenizers/ is found before any download.
    source = resources.files("wordllama") / "tokenizers" / _TOKENIZER
    target = cache_dir / "tokenizers" / _TOKENIZER
    data = source.read_bytes()
    if target.is_file() and target.stat().st_size == len(data):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write aside and rename, so a process loading at the same moment never reads half a file.
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)


def load_model(cache_dir: Path) -> Any:
    """The WordLlama model, loaded once per process and cache folder, without touching the network.

    Raises:
        ScorerError: the bundled weights or tokenizer cannot be found or read.
    """
    with _LOAD_LOCK:
        if cache_dir not in _MODELS:
            from wordllama import WordLlama  # imported on first use: it costs start-up time elsewhere

            try:
                _stage_tokenizer(cache_dir)
                _MODELS[cache_dir] = WordLlama.load(_CONFIG, cache_dir=cache_dir, disable_download=True)
            except (OSError, ValueError) as exc:
                raise ScorerError(f"cannot load the wordllama model offline from {cache_dir}: {exc}") from exc
        return _MODELS[cache_dir]


def similarity(model: Any, first: str, second: str) -> float:
    """Cosine similarity of two texts clamped to [0, 1]; opposite meanings are as wrong as unrelated ones."""
    if first.strip() == second.strip():
        return 1.0  # also covers two empty texts, whose embeddings are zero vectors
    a, b = model.embed([first, second])
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    if norms == 0.0:
        return 0.0  # a text with no known token has no direction to compare
    return min(1.0, max(0.0, float(np.dot(a, b)) / norms))


class EmbeddingScorer(SpecScorer):
    """Semantic similarity of answer and expected value (``wordllama-l2-supercat``, 256 dimensions).

    Args:
        spec: The scorer's spec entry.
        cache_dir: Where the tokenizer copy lives; defaults to :func:`default_cache_dir`.
    """

    def __init__(self, spec: EmbeddingSpec, *, cache_dir: Path | None = None) -> None:
        super().__init__(spec)
        self._cache_dir = (cache_dir or default_cache_dir()).resolve()

    async def score(self, row: ScoreInput) -> ScoreResult:
        expected = as_text(require_expected(row, self.name))
        got = as_text(answer(row))
        # Off the event loop: the first call loads the model, and long texts take a while to embed.
        value = await asyncio.to_thread(self._similarity, got, expected)
        return ScoreResult(value=value)

    def _similarity(self, got: str, expected: str) -> float:
        return similarity(load_model(self._cache_dir), got, expected)
