"""Fine-tunes as search candidates, end to end on the embedded model: a spec's ``search.fine_tune`` job is
trained before the search (a real LoRA on CPU), offered as one more choice of model, evaluated as a full eval
like every other candidate, kept with the run's space with its lineage, found again by its hash by the next
run, estimated by ``--dry-run``; and a job the machine cannot train is bad input naming the field."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from promptopt.engine import Services
from promptopt.errors import InputError
from promptopt.models import LOCAL_DEFAULT_MODEL, get_backend
from promptopt.search import FineTuneTrained, PrePass, RunOptions, SearchRun, estimate_run, plan_run
from promptopt.search._finetune import training_examples
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.validate import check_fine_tune, load_and_check

# Every answer is "banana": the spec's prompt gets about half right (two labels, constrained), a LoRA trained
# on the train split's answers gets them all; the search has to find that out by evaluating it.
WORDS = ("apple", "river", "stone", "cloud", "piano", "tiger", "lemon", "chair", "ocean", "maple")
JOB = {"name": "lora", "epochs": 3, "rank": 4, "alpha": 8, "learning_rate": 3e-3, "max_rows": 12}


def write_spec(folder: Path, **search) -> Path:
    rows = [{"input": {"word": f"{w} {i}"}, "expected": "banana"} for i, w in enumerate(WORDS * 3)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "fruit",
            "model": LOCAL_DEFAULT_MODEL,
            "prompt": [{"role": "user", "content": "Which fruit goes with the word {{word}}?"}],
            "params": {"temperature": 0, "max_tokens": 4},
            "output": {"type": "label", "labels": ["banana", "cherry"]},
            "constrained": True,
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.6, "validation": 0.2, "test": 0.2}, "seed": 0},
        "scorers": [{"type": "exact_match"}],
        "search": search,
        "budget": {"trials": 4},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(spec: Path, store_url: str) -> tuple[object, list[FineTuneTrained]]:
    loaded = load_spec(spec)
    events: list[FineTuneTrained] = []

    async def go() -> object:
        backend = get_backend()
        try:
            search = SearchRun(
                loaded=loaded,
                dataset=load_and_check(loaded),
                options=RunOptions(sampler="grid", seed=0, max_trials=4, top_k=1, promote=False),
                services=Services(backend=backend, records=get_store(store_url)),
                on_event=lambda e: events.append(e) if isinstance(e, FineTuneTrained) else None,
            )
            return await search.run()
        finally:
            await backend.aclose()

    return asyncio.run(go()), events


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ft-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMPTOPT_ADAPTERS", str(folder / "adapters"))
        spec = write_spec(folder, fine_tune={"jobs": [JOB]})
        url = f"sqlite:///{folder / 's.db'}"
        result, events = run(spec, url)
        yield folder, spec, url, result, events


def test_the_fine_tune_is_a_candidate_evaluated_like_any_other_and_wins_when_it_is_better(first_run):
    _, _, _, result, events = first_run
    [trained] = events
    assert trained.job == "lora" and not trained.reused and trained.rows == 12 and trained.train_s > 0
    assert trained.model.startswith(f"{LOCAL_DEFAULT_MODEL}+ft-")
    models = {c.config["model"] for c in result.leaderboard}
    assert models == {LOCAL_DEFAULT_MODEL, trained.model}  # the base and the fine-tune, both full evals
    assert result.baseline.config["model"] == LOCAL_DEFAULT_MODEL  # trial 0 is the spec as written
    assert result.best.config["model"] == trained.model
    assert result.best.validation_score == 1.0 and result.best.test_score == 1.0
    assert result.baseline.validation_score < 1.0


def test_the_run_keeps_the_fine_tunes_lineage_with_its_space(first_run):
    _, _, url, result, events = first_run
    space = get_store(url).get_run(result.run_id).space
    [dim] = [d for d in space["dimensions"] if d["kind"] == "fine_tune"]
    assert dim["models"] == {"lora": events[0].model}
    lineage = dim["lineage"]["lora"]
    assert lineage["base_model"] == LOCAL_DEFAULT_MODEL and lineage["rows"] == 12 and lineage["data"] == "train"
    assert lineage["params"]["rank"] == 4 and len(lineage["data_hash"]) == 64 and len(lineage["file_sha256"]) == 64


def test_a_later_run_finds_the_same_job_again_instead_of_training_it(first_run, monkeypatch):
    folder, spec, _, first, events = first_run
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(folder / "adapters"))
    again, again_events = run(spec, f"sqlite:///{folder / 'other.db'}")  # a new run, not a resume
    [found] = again_events
    assert found.reused and found.train_s == 0 and found.model == events[0].model
    assert again.best.config["model"] == first.best.config["model"]
    assert len(list((folder / "adapters").glob("*.gguf"))) == 1


def test_dry_run_estimates_the_training(tmp_path):
    spec = write_spec(tmp_path, fine_tune={"jobs": [JOB, {**JOB, "name": "traces", "data": "traces"}]})
    loaded = load_spec(spec)
    estimate = estimate_run(loaded, load_and_check(loaded), trials=2, top_k=1, backend=get_backend())
    lora, traces = estimate["fine_tune"]["lora"], estimate["fine_tune"]["traces"]
    assert lora["rows"] == 12 and lora["epochs"] == 3 and lora["usd"] == 0.0
    assert lora["training_tokens"] > 12 * 3 * 5 and lora["train_s"] > 0
    assert traces["rows"] == 12 and traces["data"] == "traces"  # max_rows, under the pre-pass sample of 24
    assert estimate["breakdown"]["prepass"] > 0  # traces need the pre-pass's right answers


@pytest.mark.parametrize(
    ("job", "field", "message"),
    [
        ({"base": "anthropic/claude-3-5-haiku"}, "search.fine_tune.jobs[0].base", "expected local/<model>"),
        ({"base": "local/no-such-model"}, "search.fine_tune.jobs[0].base", "unknown local model"),
        ({"epochs": 0}, "search.fine_tune.jobs[0].epochs", "greater than or equal to 1"),
    ],
)
def test_a_job_this_machine_cannot_train_is_bad_input_naming_the_field(tmp_path, job, field, message):
    spec = write_spec(tmp_path, fine_tune={"jobs": [job]})
    with pytest.raises(InputError, match=message) as err:
        check_fine_tune(load_spec(spec))
    assert err.value.file == str(spec) and err.value.field == field


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ([{"name": "ft2"}, {}], r"must be unique \(unnamed jobs are ft1, ft2, ...\): \['ft2'\]"),
        ([{"name": "none"}], "'none' names the configuration's own model"),
    ],
)
def test_job_names_that_would_collide_in_the_run_are_bad_input(tmp_path, jobs, message):
    with pytest.raises(InputError, match=message) as err:
        load_spec(write_spec(tmp_path, fine_tune={"jobs": jobs}))
    assert err.value.field == "search.fine_tune.jobs"


def test_an_eval_of_a_spec_with_jobs_is_not_blocked_by_them_but_a_run_is(tmp_path):
    spec = write_spec(tmp_path, fine_tune={"jobs": [{"base": "local/no-such-model"}]})
    loaded = load_spec(spec)
    dataset = load_and_check(loaded)  # what eval checks: it trains nothing

    with pytest.raises(InputError, match="unknown local model"):
        plan_run(loaded, dataset, RunOptions(), get_backend())


def test_training_examples_come_from_train_cases_only_never_validation_test_or_confirmation(tmp_path):
    loaded = load_spec(write_spec(tmp_path, fine_tune={"jobs": [{**JOB, "max_rows": 1000}]}))
    dataset = load_and_check(loaded).carve_confirmation(4, seed=0)  # as a run with search.confirm does
    [job] = loaded.spec.search.fine_tune.jobs
    examples = training_examples(loaded, dataset, job, PrePass((), ()))
    words = {e.messages[-1]["content"].removeprefix("Which fruit goes with the word ").rstrip("?") for e in examples}
    held_out = {c.input["word"] for split in ("validation", "test", "confirm") for c in dataset.split(split).cases}
    assert len(dataset.confirm) == 4 and held_out
    assert words == {c.input["word"] for c in dataset.train.cases}  # every train case, and nothing else
    assert not words & held_out
    assert [e.completion for e in examples] == ["banana"] * len(examples)
    capped = training_examples(loaded, dataset, job.model_copy(update={"max_rows": 5}), PrePass((), ()))
    assert len(capped) == 5 and capped == training_examples(
        loaded, dataset, job.model_copy(update={"max_rows": 5}), PrePass((), ())
    )  # a fixed sample: the same adapter key every time


def test_a_task_model_without_a_supported_fine_tuning_api_needs_a_base_that_has_one(tmp_path):
    spec = write_spec(tmp_path, fine_tune={"jobs": [{}]})
    data = yaml.safe_load(spec.read_text())
    data["task"]["model"] = "anthropic/claude-3-5-haiku"  # openai/<model>: a provider fine-tune, tested apart
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"\(the task's model; set base\) cannot be fine-tuned") as err:
        check_fine_tune(load_spec(spec))
    assert err.value.field == "search.fine_tune.jobs[0].base"
