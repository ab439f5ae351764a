"""A wall-time budget that the fine-tune training uses up fails the run at once with the reason (the training
time, the limit, what to do), marks the run failed in the store, and pays no trial; one that leaves time runs.
The dry run estimates training on the rows the run trains on (train after the confirmation slice left it)."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from promptopt.engine import Services
from promptopt.errors import EvalFailed
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, SearchRun, estimate_run
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.validate import load_and_check
from tests.search.finetune_fakes import answer, fake_trainer, write_spec


def run(tmp_path, wall_s: float, sleep_s: float):
    loaded = load_spec(write_spec(tmp_path, wall_s=wall_s))
    store, backend = get_store(f"sqlite:///{tmp_path / 's.db'}"), ScriptedBackend(answer)
    search = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(sampler="grid", seed=0, max_trials=4, top_k=1, promote=False),
        services=Services(backend=backend, records=store),
        trainer=fake_trainer(sleep_s),
    )
    try:
        return asyncio.run(search.run()), store, backend
    except EvalFailed as exc:
        return exc, store, backend


def test_training_that_uses_up_the_wall_budget_fails_the_run_saying_so_before_any_trial(tmp_path):
    error, store, backend = run(tmp_path, wall_s=0.5, sleep_s=0.6)
    assert isinstance(error, EvalFailed)
    message = str(error)
    assert "spec.yaml: budget.wall_s (0.5 s) ran out while the fine-tune jobs trained (123 s of training" in message
    assert "--dry-run" in message and "found again by their hash" in message
    (record,) = store.list_runs()
    assert record.status == "failed" and record.error_message == message
    assert store.list_experiments(run_id=record.id) == [] and backend.calls == []  # nothing was paid


def test_a_wall_budget_that_leaves_time_after_training_runs_the_search(tmp_path):
    result, store, backend = run(tmp_path, wall_s=600, sleep_s=0.0)
    assert not isinstance(result, EvalFailed)
    assert result.best.config["model"].startswith("local/") and "+ft-" in result.best.config["model"]
    (record,) = store.list_runs()
    assert record.status == "finished" and store.list_experiments(run_id=record.id) and backend.calls


def test_the_dry_run_counts_training_rows_after_the_confirmation_slice_leaves_train(tmp_path):
    path = write_spec(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["search"]["confirm"] = {"cases": 4, "shortlist": 2}
    path.write_text(yaml.safe_dump(spec))
    loaded = load_spec(path)
    dataset = load_and_check(loaded)
    assert len(dataset.train) == 12 and not dataset.confirm.cases
    est = estimate_run(loaded, dataset, trials=3, top_k=1, backend=ScriptedBackend(answer))
    assert est["rows"]["train"] == 8 and est["fine_tune"]["lora"]["rows"] == 8  # 4 train cases confirm instead
    assert est["breakdown"]["confirm"] == 2 * 4
    carved = dataset.carve_confirmation(4, seed=0)  # what the run itself estimates from: carved once, not twice
    assert estimate_run(loaded, carved, trials=3, top_k=1, backend=ScriptedBackend(answer)) == est


def test_a_run_trains_its_lora_jobs_with_the_trainer_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(tmp_path / "adapters"))
    called: list[tuple[str, int]] = []
    train = fake_trainer()

    async def trainer(base_model, examples, params):  # as the Ray trainer is handed to SearchRun by `optimize run`
        called.append((base_model, len(examples)))
        return await train(base_model, examples, params)

    monkeypatch.setattr("promptopt.finetune._lora.train_lora", lambda *a, **k: pytest.fail("trained in process"))
    loaded = load_spec(write_spec(tmp_path))
    search = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(sampler="grid", seed=0, max_trials=4, top_k=1, promote=False),
        services=Services(backend=ScriptedBackend(answer), records=get_store(f"sqlite:///{tmp_path / 's.db'}")),
        trainer=trainer,
    )
    result = asyncio.run(search.run())
    assert called == [(loaded.spec.task.model, 12)] and "+ft-" in result.best.config["model"]
