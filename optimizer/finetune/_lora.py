"""A LoRA of an embedded model, trained on CPU and written as a GGUF adapter that llama.cpp loads beside the
same base file.

The base weights come from the GGUF file the model's package ships: transformers reads GGUF and dequantizes
it, so the adapter is trained against exactly the weights llama.cpp serves (no hub download anywhere). The
adapter targets the value and output projections of attention and the three MLP projections: llama.cpp's GGUF
keeps the query and key weights permuted for its rotary layout, and leaving them out spares the inverse
permutation of their LoRA factors. The adapter file is named by a content hash of (base model, training data,
parameters): the same job is trained once and every later call finds the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptopt.models import adapter_file, adapters_dir, finetuned_name, local_model_file

# Hugging Face module -> its tensor name in llama.cpp's GGUF (llama architecture), per layer.
GGUF_NAMES = {
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
END_OF_TURN = "<|im_end|>"  # SmolLM2's chat template closes each turn with it: the answer is trained to stop


class LoraParams(BaseModel):
    """How a LoRA is trained; every field is part of the adapter's content hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rank: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1, description="LoRA scale numerator: updates are scaled by alpha / rank.")
    epochs: int = Field(3, ge=1, le=100)
    learning_rate: float = Field(2e-3, gt=0, le=1)
    max_rows: int = Field(200, ge=1, description="Training examples used at most (the first ones).")
    seed: int = 0


class TrainingExample(BaseModel):
    """One chat prompt (OpenAI-style messages) and the answer the model should give to it."""

    model_config = ConfigDict(frozen=True)
    messages: tuple[dict[str, str], ...]
    completion: str


class Adapter(BaseModel):
    """A trained adapter: the model name that serves it, its file and what it was made from."""

    model_config = ConfigDict(frozen=True)
    model: str  # e.g. local/smollm2-135m+ft-<key>, servable wherever the adapters folder is
    base_model: str
    key: str
    path: Path
    file_sha256: str
    data_hash: str
    params: LoraParams
    rows: int
    train_s: float
    reused: bool = False  # found on disk: nothing was trained


def data_hash(examples: Sequence[TrainingExample]) -> str:
    body = json.dumps([e.model_dump(mode="json") for e in examples], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def adapter_key(base_model: str, examples: Sequence[TrainingExample], params: LoraParams) -> str:
    """The content address of a LoRA job: base model, training data and parameters."""
    return _key(base_model, data_hash(examples[: params.max_rows]), params)


def _key(base_model: str, data: str, params: BaseModel) -> str:
    """A job's content address (16 hex digits): its base model, its data's hash and its parameters."""
    body = json.dumps({"base": base_model, "data": data, "params": params.model_dump()}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


LoraTrainer = Callable[[str, Sequence[TrainingExample], LoraParams], Awaitable[Adapter]]
"""How a run trains a LoRA: in a thread of this process (:func:`train_in_thread`, the default), or as a Ray task
(``promptopt.workers.ray_lora_trainer``) when the run's trials run on Ray."""


async def train_in_thread(base_model: str, examples: Sequence[TrainingExample], params: LoraParams) -> Adapter:
    """:func:`train_lora` in a worker thread, so that the event loop goes on."""
    return await asyncio.to_thread(train_lora, base_model, examples, params)


def train_lora(
    base_model: str,
    examples: Sequence[TrainingExample],
    params: LoraParams | None = None,
    *,
    folder: Path | None = None,
) -> Adapter:
    """Train (or find again) the LoRA of ``base_model`` (``local/<name>``) on ``examples``.

    The adapter goes to ``folder`` (default: :func:`promptopt.models.adapters_dir`) as ``<key>.gguf``,
    written to a temporary file and renamed, so a killed job leaves no half-written adapter behind and the
    next call trains it again from scratch.

    Raises:
        ValueError: no training example.
    """
    params = params or LoraParams()
    examples = list(examples)[: params.max_rows]
    if not examples:
        raise ValueError("a LoRA needs at least one training example")
    folder = folder or adapters_dir()
    data = data_hash(examples)
    key = _key(base_model, data, params)
    path = adapter_file(key, folder)
    common = {
        "model": finetuned_name(base_model, key),
        "base_model": base_model,
        "key": key,
        "path": path,
        "data_hash": data,
        "params": params,
        "rows": len(examples),
    }
    if path.is_file():
        return Adapter(**common, file_sha256=_sha256(path), train_s=0.0, reused=True)
    start = time.perf_counter()
    tensors = _train(base_model, examples, params)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}-", suffix=".gguf.part")
    os.close(fd)
    try:
        write_gguf_lora(tensors, Path(tmp), alpha=params.alpha)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return Adapter(**common, file_sha256=_sha256(path), train_s=time.perf_counter() - start)


def _train(base_model: str, examples: Sequence[TrainingExample], params: LoraParams) -> dict[str, Any]:
    """LoRA factors after training, by GGUF tensor name (``blk.<i>.<name>.weight.lora_a``/``lora_b``)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = local_model_file(base_model)
    torch.manual_seed(params.seed)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = LoraConfig(
        r=params.rank, lora_alpha=params.alpha, lora_dropout=0.0, target_modules=[m.split(".")[-1] for m in GGUF_NAMES]
    )
    peft_model = get_peft_model(model, config)
    batches = [_encode(tokenizer, e) for e in examples]
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=params.learning_rate)
    rng = torch.Generator().manual_seed(params.seed)
    peft_model.train()
    for _ in range(params.epochs):
        for i in torch.randperm(len(batches), generator=rng).tolist():
            ids, labels = batches[i]
            peft_model(input_ids=ids, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return _gguf_tensors(peft_model.state_dict())


def _encode(tokenizer: Any, example: TrainingExample) -> tuple[Any, Any]:
    """Token ids of prompt + answer, and labels that score the answer (and its end of turn) only."""
    import torch

    prompt = tokenizer.apply_chat_template(list(example.messages), tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.completion + END_OF_TURN, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])
    return ids, labels


def _gguf_tensors(state: dict[str, Any]) -> dict[str, Any]:
    """peft's ``...layers.<i>.<module>.lora_A.default.weight`` -> ``blk.<i>.<gguf name>.weight.lora_a``, as float32
    arrays in torch's layout ((rank, in) for A, (out, rank) for B), which is llama.cpp's."""
    out = {}
    for name, tensor in state.items():
        if ".lora_A." not in name and ".lora_B." not in name:
            continue
        _, _, rest = name.partition(".layers.")
        layer, _, module_and_factor = rest.partition(".")
        module, factor = module_and_factor.split(".lora_")
        suffix = "lora_a" if factor.startswith("A") else "lora_b"
        out[f"blk.{int(layer)}.{GGUF_NAMES[module]}.weight.{suffix}"] = tensor.detach().float().contiguous().numpy()
    return out


def write_gguf_lora(tensors: dict[str, Any], path: Path, *, alpha: float, arch: str = "llama") -> None:
    """A GGUF LoRA adapter as llama.cpp reads it: ``general.type = adapter``, ``adapter.type = lora``,
    ``adapter.lora.alpha`` (the scale is alpha / rank, as peft's), and the factor pairs by tensor name."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for name, array in sorted(tensors.items()):
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
