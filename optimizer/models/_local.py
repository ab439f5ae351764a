"""The embedded local models, run in-process by llama.cpp. The only module that imports ``llama_cpp``.

It is reached through litellm (``_litellm.py`` registers the ``local`` provider and imports this module on the
first ``local/...`` call), so callers treat the embedded model exactly like a cloud one.

* One :class:`LocalModel` per model file per process: the weights and the KV cache are large and the CPU is
  shared, so a second copy would only compete with the first. It loads on first use.
* Calls run one at a time on the model's own worker thread, off the event loop; any number of concurrent
  callers get the same answers as sequential ones (sampling is seeded per call).
* Prefix reuse: llama.cpp keeps the previous call's tokens and evaluates only what follows their longest
  common prefix with the new prompt; a RAM cache of saved states lets interleaved prompt configs find their
  own prefix. Turn it off with ``PROMPTOPT_LOCAL_PREFIX_REUSE=0`` or per call (the context is then reset
  before each call).
* Work per call is bounded by ``max_tokens`` (default :data:`DEFAULT_MAX_TOKENS`: the small model rambles) and
  the context size; a running generation is not interrupted by a timeout.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp  # noqa: TID251 - this module is the llama.cpp adapter
import numpy as np

from promptopt.models._base import Constraint
from promptopt.models._files import (
    LocalModelError,
    local_adapter_file,
    local_model_file,
)

PREFIX_REUSE_ENV = "PROMPTOPT_LOCAL_PREFIX_REUSE"
N_CTX = 2048
SEED = 1234
DEFAULT_MAX_TOKENS = 256
CACHE_BYTES = 512 * 2**20
_SAMPLING_PARAMS = frozenset(
    {"temperature", "top_p", "top_k", "min_p", "stop", "presence_penalty", "frequency_penalty", "repeat_penalty"}
)


@dataclass(frozen=True)
class LocalResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    label_logprobs: dict[str, float] | None = None


def prefix_reuse_default() -> bool:
    """Prefix reuse is on unless ``PROMPTOPT_LOCAL_PREFIX_REUSE=0``."""
    return os.environ.get(PREFIX_REUSE_ENV, "1").strip() != "0"


_MODELS: dict[tuple[Path, Path | None], LocalModel] = {}
_MODELS_LOCK = threading.Lock()


def get_model(name: str) -> LocalModel:
    """The process-wide :class:`LocalModel` for ``name`` (one per model file and LoRA adapter)."""
    path, lora = local_model_file(name), local_adapter_file(name)
    with _MODELS_LOCK:
        if (path, lora) not in _MODELS:
            _MODELS[path, lora] = LocalModel(path, lora_path=lora)
        return _MODELS[path, lora]


async def achat(
    name: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    params: Mapping[str, Any],
    constraint: Constraint | None = None,
    prefix_reuse: bool | None = None,
) -> LocalResult:
    """Run one chat completion on the model's worker thread; see :meth:`LocalModel.chat`."""
    model = get_model(name)
    return await model.achat(messages, params=params, constraint=constraint, prefix_reuse=prefix_reuse)


class LocalModel:
    """One model file: the llama.cpp context, its prefix cache and a single worker thread.

    Example:
        >>> model = get_model("local/smollm2-135m")
        >>> model.chat([{"role": "user", "content": "Hi"}], params={"max_tokens": 8}).completion_tokens <= 8
        True
    """

    def __init__(self, path: Path, *, lora_path: Path | None = None, cache_bytes: int = CACHE_BYTES) -> None:
        self.path, self.lora_path = path, lora_path
        self._lock = threading.Lock()  # guards loading and every call, also for callers not using achat
        self._llama: _LightStateLlama | None = None
        self._cache = llama_cpp.LlamaRAMCache(capacity_bytes=cache_bytes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{path.stem}")

    async def achat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        params: Mapping[str, Any],
        constraint: Constraint | None = None,
        prefix_reuse: bool | None = None,
    ) -> LocalResult:
        # A dedicated FIFO thread rather than asyncio.to_thread: queued calls must not fill the default pool.
        call = functools.partial(self.chat, messages, params=params, constraint=constraint, prefix_reuse=prefix_reuse)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        params: Mapping[str, Any],
        constraint: Constraint | None = None,
        prefix_reuse: bool | None = None,
    ) -> LocalResult:
        """One chat completion with the model's chat template.

        Args:
            messages: OpenAI-style chat messages.
            params: ``max_tokens`` (or ``max_completion_tokens``), ``temperature``, ``top_p``, ``seed``,
                ``stop`` and other llama.cpp sampling options (llama-cpp-python's defaults otherwise, e.g.
                temperature 0.2; ``max_tokens`` defaults to :data:`DEFAULT_MAX_TOKENS`); others are ignored.
            constraint: Restrict the output to one of its labels or to its JSON schema (by a grammar); with
                ``label_scores``, score every label instead (:meth:`score_labels`).
            prefix_reuse: Reuse evaluated prompt prefixes; ``None`` reads ``PROMPTOPT_LOCAL_PREFIX_REUSE``.
        """
        if params.get("tools"):
            raise LocalModelError("the local models do not call tools; send tools to a cloud model", status=400)
        if constraint is not None and constraint.label_scores:
            if not constraint.labels:
                raise LocalModelError("label scores need the constraint's labels", status=400)
            return self.score_labels(messages, constraint.labels, prefix_reuse=prefix_reuse)
        kwargs = _sampling_kwargs(params)
        grammar = _grammar(constraint)
        reuse = prefix_reuse_default() if prefix_reuse is None else prefix_reuse
        with self._lock:
            llama = self._load()
            llama.set_cache(self._cache if reuse else None)
            if not reuse:
                llama.reset()
            chat: Any = [dict(m) for m in messages]  # OpenAI-style dicts; llama_cpp types them as TypedDicts
            try:
                out: Any = llama.create_chat_completion(messages=chat, grammar=grammar, **kwargs)  # not streamed
            except ValueError as exc:  # llama.cpp's own checks, e.g. a prompt longer than the context
                raise LocalModelError(f"{self.path.name}: {exc}", status=400) from exc
        choice, usage = out["choices"][0], out["usage"]
        return LocalResult(
            text=choice["message"]["content"] or "",
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            finish_reason=choice.get("finish_reason") or "stop",
        )

    def score_labels(
        self, messages: Sequence[Mapping[str, Any]], labels: Sequence[str], *, prefix_reuse: bool | None = None
    ) -> LocalResult:
        """Every label's log-probability as the assistant's whole answer (the sum over its tokens), from one
        evaluation of the prompt and then of each label's tokens; the answer is the most probable label.

        The prompt is the one :meth:`chat` would send (the model's own chat template), so the most probable label
        is what a label-constrained greedy decode answers, up to how the label is split into tokens.
        Sampling parameters do not apply: nothing is sampled.
        """
        if not labels or not all(labels):
            raise LocalModelError(f"constraint labels must be non-empty strings, got {list(labels)!r}", status=400)
        reuse = prefix_reuse_default() if prefix_reuse is None else prefix_reuse
        with self._lock:
            llama = self._load()
            if not reuse:
                llama.reset()
            prompt = _prompt_tokens(llama, messages)
            spelled = {label: llama.tokenize(label.encode("utf-8"), add_bos=False, special=False) for label in labels}
            longest = max(len(ids) for ids in spelled.values())
            if len(prompt) + longest > llama.n_ctx():
                raise LocalModelError(
                    f"{self.path.name}: the prompt ({len(prompt)} tokens) and a label ({longest}) exceed the "
                    f"context of {llama.n_ctx()} tokens",
                    status=400,
                )
            if reuse:
                _load_longest_prefix(llama, self._cache, prompt)
            after_prompt = _logprobs_after(llama, prompt)
            scores: dict[str, float] = {}
            for label, ids in spelled.items():
                total = float(after_prompt[ids[0]])
                for i in range(1, len(ids)):
                    total += float(_logprobs_after(llama, prompt + ids[:i])[ids[i]])
                scores[label] = total
            if reuse:
                self._cache[llama.input_ids[: llama.n_tokens].tolist()] = llama.save_state()
        best = max(labels, key=lambda label: scores[label])
        return LocalResult(
            text=best,
            prompt_tokens=len(prompt),
            completion_tokens=len(spelled[best]),
            finish_reason="stop",
            label_logprobs=scores,
        )

    def _load(self) -> _LightStateLlama:
        if self._llama is None:
            self._llama = _LightStateLlama(
                model_path=str(self.path),
                lora_path=None if self.lora_path is None else str(self.lora_path),
                n_ctx=N_CTX,
                n_threads=os.cpu_count(),
                seed=SEED,
                verbose=False,
            )
        return self._llama


def _prompt_tokens(llama: llama_cpp.Llama, messages: Sequence[Mapping[str, Any]]) -> list[int]:
    """The tokens ``create_chat_completion`` evaluates for ``messages``: the model's chat template with the
    assistant turn opened, tokenized as llama-cpp-python's template handler does."""
    template = llama.metadata.get("tokenizer.chat_template")
    if llama.chat_format != "chat_template.default" or not template:
        raise LocalModelError(
            f"label scores need the model's own chat template; this model uses {llama.chat_format!r}", status=400
        )
    formatter = _formatter(template, _token_text(llama, llama.token_eos()), _token_text(llama, llama.token_bos()))
    result = formatter(messages=[dict(m) for m in messages])
    tokens: list[int] = llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
    return tokens


def _token_text(llama: llama_cpp.Llama, token: int) -> str:
    return "" if token < 0 else llama.detokenize([token], special=True).decode("utf-8", errors="ignore")


@functools.lru_cache(maxsize=8)
def _formatter(template: str, eos: str, bos: str) -> Any:
    from llama_cpp import llama_chat_format  # noqa: TID251 - this module is the llama.cpp adapter

    return llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


def _load_longest_prefix(llama: llama_cpp.Llama, cache: llama_cpp.LlamaRAMCache, tokens: list[int]) -> None:
    """Restore the saved state sharing the longest prefix with ``tokens`` when it beats the context's own (as
    ``create_completion`` does before it generates)."""
    try:
        state = cache[tokens]
    except KeyError:
        return
    own = llama_cpp.Llama.longest_token_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
    if llama_cpp.Llama.longest_token_prefix(state.input_ids.tolist(), tokens) > own:
        llama.load_state(state)


def _logprobs_after(llama: llama_cpp.Llama, tokens: list[int]) -> np.ndarray:
    """Log-probabilities of the next token after ``tokens``, evaluating only what follows the prefix the
    context already holds (at least one token, so that the logits are fresh)."""
    held = llama.input_ids[: llama.n_tokens].tolist()
    keep = min(llama_cpp.Llama.longest_token_prefix(held, tokens), len(tokens) - 1)
    llama.n_tokens = keep  # eval drops the KV cells past it
    llama.eval(tokens[keep:])
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).astype(np.float64)
    return logits - np.logaddexp.reduce(logits)


def _sampling_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = {key: value for key, value in params.items() if key in _SAMPLING_PARAMS and value is not None}
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
    # Seeding every call (not only the first) makes a call's answer independent of what ran before it.
    seed = params.get("seed")
    return {**kwargs, "max_tokens": int(max_tokens), "seed": SEED if seed is None else int(seed)}


def _grammar(constraint: Constraint | None) -> llama_cpp.LlamaGrammar | None:
    if constraint is None:
        return None
    if constraint.labels is not None and constraint.json_schema is not None:
        raise LocalModelError("a constraint takes labels or json_schema, not both", status=400)
    if constraint.labels is not None:
        return _labels_grammar(constraint.labels)
    if constraint.json_schema is not None:
        return _schema_grammar(json.dumps(constraint.json_schema, sort_keys=True))
    return None


@functools.lru_cache(maxsize=256)
def _labels_grammar(labels: tuple[str, ...]) -> llama_cpp.LlamaGrammar:
    if not labels or not all(labels):
        raise LocalModelError(f"constraint labels must be non-empty strings, got {list(labels)!r}", status=400)
    return llama_cpp.LlamaGrammar.from_string(labels_gbnf(labels), verbose=False)


@functools.lru_cache(maxsize=256)
def _schema_grammar(schema_json: str) -> llama_cpp.LlamaGrammar:
    try:
        return llama_cpp.LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:  # the converter raises bare Exceptions and KeyErrors on schemas it cannot handle
        raise LocalModelError(f"cannot turn the JSON schema into a grammar: {exc}", status=400) from exc


_GBNF_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def labels_gbnf(labels: Sequence[str]) -> str:
    """A GBNF grammar whose language is exactly ``labels``.

    Example:
        >>> labels_gbnf(["yes", 'say "no"'])
        'root ::= "yes" | "say \\\\"no\\\\""'
    """

    def literal(label: str) -> str:
        return '"' + "".join(_GBNF_ESCAPES.get(c, c if c.isprintable() else f"\\x{ord(c):02x}") for c in label) + '"'

    return "root ::= " + " | ".join(literal(label) for label in labels)


class _LightStateLlama(llama_cpp.Llama):
    """``Llama`` whose saved states (the prefix cache entries) hold the KV state only.

    Upstream ``save_state`` also copies ``n_tokens x n_vocab`` float32 logits (33 MB for a 190-token prompt
    with this 49k vocabulary) that sampling never reads unless ``logits_all``. The cache does not count them
    against its capacity, so 512 MB of KV states would hold about 4 GB, and every call spent ~80 ms copying.
    """

    _NO_SCORES = np.zeros((1, 1), dtype=np.single)  # broadcasts into any scores slice on load

    def save_state(self) -> llama_cpp.LlamaState:
        if self._logits_all:
            return super().save_state()
        size = llama_cpp.llama_state_get_size(self._ctx.ctx)
        buffer = (ctypes.c_uint8 * size)()
        n_bytes = llama_cpp.llama_state_get_data(self._ctx.ctx, buffer, size)
        return llama_cpp.LlamaState(
            input_ids=self.input_ids[: self.n_tokens].copy(),
            scores=self._NO_SCORES,
            n_tokens=self.n_tokens,
            llama_state=bytes(memoryview(buffer)[:n_bytes]),
            llama_state_size=n_bytes,
            seed=self._seed,
        )

    def load_state(self, state: llama_cpp.LlamaState) -> None:
        if self._logits_all:
            return super().load_state(state)
        self.input_ids[: state.n_tokens] = state.input_ids[: state.n_tokens]
        self.n_tokens = state.n_tokens
        self._requires_eval = True  # the restored logits are stale: the next decode refreshes them
        self._seed = state.seed
        buffer = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
        loaded = llama_cpp.llama_state_set_data(self._ctx.ctx, buffer, state.llama_state_size)
        if loaded != state.llama_state_size:
            raise RuntimeError("llama.cpp refused the saved state")
