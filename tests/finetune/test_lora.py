"""A LoRA of the embedded model trained on CPU, written as a GGUF adapter, served by our local provider under
its content-addressed name: the answers change, the same job is not trained twice, and a name whose adapter is
missing is a clear error. Real torch, real llama.cpp; nothing downloaded."""

from __future__ import annotations

import asyncio

import pytest

from promptopt.finetune import LoraParams, TrainingExample, adapter_key, train_lora
from promptopt.models import (
    LOCAL_DEFAULT_MODEL,
    Constraint,
    LocalModelError,
    ModelRequest,
    get_backend,
    local_adapter_file,
)

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
