"""A run on Ray trains its LoRA fine-tunes as a Ray task: the driver process never imports torch, and the
adapter lands in the driver's adapters folder under the same content address the in-process trainer uses (a
second training of the job finds it, trains nothing). Real Ray, real torch in the worker, a tiny LoRA."""

from __future__ import annotations

import json
import subprocess
import sys

from promptopt.finetune import LoraParams, TrainingExample, adapter_key, train_lora
from promptopt.models import LOCAL_DEFAULT_MODEL

PARAMS = LoraParams(rank=2, alpha=4, epochs=1, learning_rate=3e-3)
QUESTIONS = ("Name a fruit.", "Say something.", "Tell me a word.")

DRIVER = """
import asyncio, json, sys
from promptopt.finetune import LoraParams, TrainingExample
from promptopt.workers import ray_lora_trainer

examples = [TrainingExample.model_validate(e) for e in json.loads(sys.argv[2])]
params = LoraParams.model_validate_json(sys.argv[3])
adapter = asyncio.run(ray_lora_trainer()(sys.argv[1], examples, params))
print(json.dumps({"adapter": adapter.model_dump(mode="json"), "torch_in_driver": "torch" in sys.modules}))
"""


def examples() -> list[TrainingExample]:
    return [TrainingExample(messages=({"role": "user", "content": q},), completion="banana") for q in QUESTIONS]


def test_a_lora_trains_as_a_ray_task_into_the_drivers_folder_under_its_content_address(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(tmp_path / "adapters"))
    args = [LOCAL_DEFAULT_MODEL, json.dumps([e.model_dump(mode="json") for e in examples()]), PARAMS.model_dump_json()]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["torch_in_driver"] is False  # the training ran in a Ray worker
    adapter = out["adapter"]
    key = adapter_key(LOCAL_DEFAULT_MODEL, examples(), PARAMS)
    assert adapter["key"] == key and adapter["model"] == f"{LOCAL_DEFAULT_MODEL}+ft-{key}"
    assert adapter["path"] == str(tmp_path / "adapters" / f"{key}.gguf") and not adapter["reused"]
    assert (tmp_path / "adapters" / f"{key}.gguf").read_bytes()[:4] == b"GGUF"
    assert not list((tmp_path / "adapters").glob("*.part"))
    again = train_lora(LOCAL_DEFAULT_MODEL, examples(), PARAMS)  # in process: the same job, found again
    assert again.reused and again.key == key and again.file_sha256 == adapter["file_sha256"]
