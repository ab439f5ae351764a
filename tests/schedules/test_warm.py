"""Warm start: the production version (examples included) is trial 0, the previous run's winners come next
(when the new space can express them), and nothing else about the search changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from promptopt.cache import NullCache
from promptopt.config import Example, PromptConfig
from promptopt.engine import Services
from promptopt.logs import LogQuery, dataset_from_logs, write_jsonl
from promptopt.schedules import derive_spec, params_for, prepare_warm_start, previous_best, rebase
from promptopt.search import RunOptions, SearchRun
from promptopt.search_spaces import FewShotDimension, InstructionDimension, SearchSpace, TemperatureDimension
from promptopt.spec import Decoding, load_spec
from promptopt.store import get_store
from promptopt.validate import load_and_check
from tests.schedules.helpers import EXPERT, PROMPT, backend, write_spec
from tests.schedules.test_concurrency import log_traffic

PREVIOUS = "PREVIOUS WINNER: " + EXPERT


def production_config(spec: Path, **fields) -> PromptConfig:
    return PromptConfig.from_task(load_spec(spec).spec.task).model_copy(update=fields)


def test_production_is_trial_0_and_the_previous_winners_come_next(sqlite_url: str, tmp_path: Path) -> None:
    store = get_store(sqlite_url)
    spec = write_spec(tmp_path / "spec")
    log_traffic(store)
    data = tmp_path / "work" / "logs.jsonl"
    write_jsonl(dataset_from_logs(store, LogQuery(prompt=PROMPT), require_expected=True), data)
    production = production_config(spec, params=Decoding(temperature=0.0, max_tokens=8))
    derived = derive_spec(load_spec(spec), data, production, work_dir=tmp_path / "work")
    assert derived.spec.task.params.max_tokens == 8 and derived.spec.dataset.file == str(data.resolve())
    assert list((tmp_path / "work").glob("spec-*.yaml"))  # kept for the record
    previous = [
        production.with_instruction(PREVIOUS),  # not in the spec: added to the space, enqueued
        production.model_copy(update={"model": "other/m"}),  # no model dimension: cannot be expressed
        production,
    ]  # the baseline itself: not twice
    search = SearchRun(
        loaded=derived,
        dataset=load_and_check(derived),
        options=RunOptions(sampler="random", seed=3, max_trials=2, promote=False),
        services=Services(backend=backend(), cache=NullCache(), records=store),
    )

    warm = asyncio.run(prepare_warm_start(search, production=production, previous=previous))
    assert warm.prepared and warm.enqueued_previous == 1 and warm.skipped_previous == 2
    again = asyncio.run(prepare_warm_start(search, production=production, previous=previous))
    assert not again.prepared and again.run_id == warm.run_id  # prepared once (then its scheduler died): kept
    result = asyncio.run(search.run())
    assert result.run_id == warm.run_id  # SearchRun.run continued the run prepared for it
    by_trial = {c.trial: PromptConfig.model_validate(c.config) for c in result.leaderboard}
    assert by_trial[0].hash == production.hash and result.baseline.trial == 0
    assert by_trial[1].hash == production.with_instruction(PREVIOUS).hash
    assert [c.hash for c in previous_best(store, result.run_id, 2)] == [by_trial[1].hash, production.hash]
    store.dispose()


def _space(base: PromptConfig) -> SearchSpace:
    pool = tuple(Example(input={"text": f"review {i}"}, output="positive" if i % 2 else "negative") for i in range(6))
    return SearchSpace(
        base,
        (
            InstructionDimension((base.instruction, EXPERT)),
            TemperatureDimension((0.0, 0.7)),
            FewShotDimension(2, {"random": pool}, 2),
        ),
    )


def test_params_for_finds_the_trial_that_stands_for_a_config(tmp_path: Path) -> None:
    space = _space(production_config(write_spec(tmp_path)))
    params = {
        "instruction": 1,
        "temperature": 0.7,
        "fewshot_k": 2,
        "fewshot_strategy": "random",
        "fewshot_seed": 1,
        "fewshot_order": "reversed",
    }
    config = space.config(params)
    found = params_for(space, config)
    assert found is not None and space.config(found).hash == config.hash
    assert params_for(space, config.with_instruction("never seen")) is None
    assert params_for(space, config.model_copy(update={"model": "other/m"})) is None


def test_a_production_version_with_examples_keeps_them_as_the_baseline(tmp_path: Path) -> None:
    examples = (Example(input={"text": "great"}, output="positive"),)
    production = production_config(write_spec(tmp_path), examples=examples)
    space, dropped = rebase(_space(production_config(write_spec(tmp_path))), production, [])
    assert dropped and not any(isinstance(d, FewShotDimension) for d in space.dimensions)
    assert space.config(space.baseline()).hash == production.hash
    plain = production.model_copy(update={"examples": ()})
    space, dropped = rebase(_space(plain), plain, [plain.with_instruction(PREVIOUS)])
    assert not dropped and space.config(space.baseline()).hash == plain.hash
    instruction = next(d for d in space.dimensions if isinstance(d, InstructionDimension))
    assert instruction.candidates[-1] == PREVIOUS and instruction.sources[-1] == "previous"
