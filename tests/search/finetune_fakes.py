"""A run with a ``search.fine_tune`` job on a scripted backend, with the LoRA training replaced by a trainer that
reports a training time without training (no torch): for tests of what a run, its budget and its report do with
a fine-tune, apart from the training itself (tests/finetune trains real adapters)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import yaml

from promptopt.finetune import Adapter, LoraParams
from promptopt.models import LOCAL_DEFAULT_MODEL, adapter_file

TRAIN_S = 123.4  # the training time the fake trainer reports


def answer(request) -> str:
    """The fine-tuned model is right on every case, the base model on none."""
    right = "positive" if int(request.messages[-1]["content"].split()[-1]) % 2 else "negative"
    wrong = "negative" if right == "positive" else "positive"
    return right if "+ft-" in request.model else wrong


def fake_trainer(sleep_s: float = 0.0):
    """A stand-in for the LoRA trainer (``SearchRun(trainer=...)``) that takes ``sleep_s`` of wall time and
    writes a small file (not a GGUF: nothing loads it) where the adapter would be, in ``$PROMPTOPT_ADAPTERS``."""

    async def train(base_model: str, examples, params: LoraParams) -> Adapter:
        await asyncio.sleep(sleep_s)
        body = json.dumps([e.model_dump(mode="json") for e in examples], sort_keys=True)
        key = hashlib.sha256(body.encode()).hexdigest()[:16]
        path = adapter_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"fake adapter {key}".encode())
        return Adapter(
            model=f"{base_model}+ft-{key}",
            base_model=base_model,
            key=key,
            path=path,
            file_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            data_hash="1" * 64,
            params=params,
            rows=len(examples),
            train_s=TRAIN_S,
        )

    return train


def write_spec(folder: Path, **budget) -> Path:
    rows = [{"input": {"text": f"review {i}"}, "expected": "positive" if i % 2 else "negative"} for i in range(30)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "reviews",
            "model": LOCAL_DEFAULT_MODEL,
            "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
            "output": {"type": "label", "labels": ["positive", "negative"]},
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 1},
        "scorers": [{"type": "exact_match"}],
        "search": {"fine_tune": {"jobs": [{"name": "lora", "epochs": 2, "rank": 4}]}},
        "budget": {"trials": 4, **budget},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
