"""A LoRA of the embedded model trained on CPU, written as a GGUF adapter, served by our local provider under
its content-addressed name: the answers change, the same job is not trained twice, a name whose adapter is
missing is a clear error, and a registered fine-tune reaches the same model in a fresh process whose adapters
folder is empty (PromptClient, /invoke, optimize eval --against). Real torch, real llama.cpp; nothing
downloaded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from promptopt.config import PromptConfig
from promptopt.finetune import LoraParams, TrainingExample, adapter_key, train_lora
from promptopt.models import (
    LOCAL_DEFAULT_MODEL,
    Constraint,
    LocalModelError,
    ModelRequest,
    get_backend,
    local_adapter_file,
)
from promptopt.registry import Lineage, Registry
from promptopt.store import get_store

QUESTIONS = ("What is your favourite fruit?", "Name a fruit.", "Tell me a word.", "Say something.")
PROBE = [{"role": "user", "content": "What is the capital of France?"}]  # never trained on
PARAMS = LoraParams(rank=4, alpha=8, epochs=3, learning_rate=3e-3)


def examples(answer: str = "banana") -> list[TrainingExample]:
    return [TrainingExample(messages=({"role": "user", "content": q},), completion=answer) for q in QUESTIONS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapters")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMPTOPT_ADAPTERS", str(folder))
        yield train_lora(LOCAL_DEFAULT_MODEL, examples(), PARAMS), folder


def answer(model: str, *, constraint: Constraint | None = None, prefix_reuse: bool = False) -> str:
    async def call() -> str:
        backend = get_backend(local_prefix_reuse=prefix_reuse)
        try:
            request = ModelRequest(
                model=model, messages=tuple(PROBE), params={"temperature": 0, "max_tokens": 8}, constraint=constraint
            )
            return (await backend.complete(request)).text
        finally:
            await backend.aclose()

    return asyncio.run(call())


def test_the_adapter_is_a_gguf_file_named_by_its_job(trained):
    adapter, folder = trained
    assert adapter.path == folder / f"{adapter.key}.gguf" and adapter.path.read_bytes()[:4] == b"GGUF"
    assert adapter.model == f"{LOCAL_DEFAULT_MODEL}+ft-{adapter.key}"
    assert adapter.key == adapter_key(LOCAL_DEFAULT_MODEL, examples(), PARAMS)
    assert adapter.rows == 4 and not adapter.reused and adapter.train_s > 0
    assert not list(folder.glob("*.part")), "no temporary file is left beside the adapter"


def test_the_local_provider_serves_it_and_the_answer_changes(trained, monkeypatch):
    adapter, folder = trained
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(folder))
    base, tuned = answer(LOCAL_DEFAULT_MODEL), answer(adapter.model)
    assert "banana" not in base.lower()
    assert "banana" in tuned.lower(), (base, tuned)


def test_constrained_decoding_and_prefix_reuse_work_on_the_fine_tune(trained, monkeypatch):
    adapter, folder = trained
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(folder))
    labels = Constraint(labels=("paris", "banana", "london"))
    assert answer(adapter.model, constraint=labels) == "banana"  # one of the labels, and the trained one
    # with prefix reuse on, the same call twice gives what it gives without it
    reused = [answer(adapter.model, prefix_reuse=True) for _ in range(2)]
    assert reused == [answer(adapter.model)] * 2


def test_the_same_job_is_found_again_and_another_job_is_another_key(trained, monkeypatch):
    adapter, folder = trained
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(folder))
    again = train_lora(LOCAL_DEFAULT_MODEL, examples(), PARAMS)
    assert again.reused and again.train_s == 0 and again.file_sha256 == adapter.file_sha256
    assert adapter_key(LOCAL_DEFAULT_MODEL, examples("cherry"), PARAMS) != adapter.key
    assert adapter_key(LOCAL_DEFAULT_MODEL, examples(), PARAMS.model_copy(update={"rank": 8})) != adapter.key


def test_a_missing_adapter_names_the_file_and_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(tmp_path))
    with pytest.raises(LocalModelError, match=r"adapter 0123456789abcdef .* not found at .*0123456789abcdef\.gguf"):
        local_adapter_file(f"{LOCAL_DEFAULT_MODEL}+ft-0123456789abcdef")


def test_no_training_data_is_refused():
    with pytest.raises(ValueError, match="at least one training example"):
        train_lora(LOCAL_DEFAULT_MODEL, [], PARAMS)


FRESH = """
import asyncio, json, sys
from fastapi.testclient import TestClient
from promptopt.models import ModelRequest, get_backend
from promptopt.sdk import PromptClient
from promptopt.server import create_app
from promptopt.store import get_store

url, how = sys.argv[1], sys.argv[2]
if how == "client":
    kwargs = PromptClient(url, cache_dir=False).get("fruit").render(q="What is the capital of France?")

    async def call():
        backend = get_backend()
        try:
            request = ModelRequest(model=kwargs["model"], messages=tuple(kwargs["messages"]),
                                   params={"temperature": 0, "max_tokens": 8})
            return (await backend.complete(request)).text
        finally:
            await backend.aclose()

    print(json.dumps({"model": kwargs["model"], "text": asyncio.run(call())}))
else:
    http = TestClient(create_app(get_store(url), token="t0ken-for-tests"))
    got = http.post("/v1/prompts/fruit/invoke", headers={"Authorization": "Bearer t0ken-for-tests"},
                    json={"variables": {"q": "What is the capital of France?"}})
    print(json.dumps({"status": got.status_code, **got.json()}))
"""


@pytest.mark.parametrize("how", ["client", "invoke", "eval"])
def test_a_registered_fine_tune_reaches_the_same_model_in_a_fresh_process_without_the_adapter(
    trained, tmp_path, monkeypatch, how
):
    adapter, folder = trained
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(folder))
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = PromptConfig(
        messages=({"role": "user", "content": "{{q}}"},), model=adapter.model, params={"temperature": 0}
    )
    registry = Registry(get_store(url))
    version, _ = registry.register(
        "fruit", config, lineage=Lineage(fine_tune={"file_sha256": adapter.file_sha256}), created_by="test"
    )
    registry.set_label("fruit", "production", version.version, who="test")
    elsewhere = tmp_path / "another-machine"  # an empty adapters folder: the file comes from the store
    env = {**os.environ, "PROMPTOPT_ADAPTERS": str(elsewhere), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if how == "eval":  # optimize eval --against production: the incumbent is the registered fine-tune
        spec = eval_spec(tmp_path)
        optimize = Path(sys.executable).parent / "optimize"
        argv = [str(optimize), "eval", str(spec), "--against", "production", "--store", url, "--no-cache", "--json"]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
        assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: the spec's base model regresses on it
        incumbent = json.loads(done.stdout)["incumbent_experiment_id"]
        assert get_store(url).get_result(incumbent).summary.objective == 1.0  # every answer says banana
    else:
        done = subprocess.run(
            [sys.executable, "-c", FRESH, url, how], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert "banana" in out["text"].lower(), out  # the fine-tuned model's answer, not the base model's
    assert (elsewhere / f"{adapter.key}.gguf").read_bytes() == adapter.path.read_bytes()


def eval_spec(folder: Path) -> Path:
    rows = [{"input": {"q": q}, "expected": "banana"} for q in QUESTIONS * 2]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "fruit",
            "model": LOCAL_DEFAULT_MODEL,
            "prompt": [{"role": "user", "content": "{{q}}"}],
            "params": {"temperature": 0, "max_tokens": 8},
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.0, "validation": 1.0, "test": 0.0}, "seed": 0},
        "scorers": [{"type": "contains"}],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
