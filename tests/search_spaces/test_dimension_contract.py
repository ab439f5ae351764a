"""The Dimension contract (promptopt.testing.DimensionContract) on every built-in dimension, each built the way
a run builds it: by promptopt.search.build_space from a spec that searches everything (instruction variants and
a grounded proposal, few-shot from random, balanced and bootstrapped pools, models, temperatures, max_tokens,
constrained output); a fine-tune dimension over two fine-tuned names (training one is in tests/finetune). Plus
the instruction dimension of a warm start (promptopt.schedules.rebase: widened with a previous run's winner),
one over a spec without a system message, and dimensions broken on purpose that the suite catches."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptopt.config import PromptConfig
from promptopt.engine import Services
from promptopt.models import ModelRequest, ScriptedBackend
from promptopt.schedules import rebase
from promptopt.search import build_space
from promptopt.search_spaces import FineTuneDimension, SearchSpace, TemperatureDimension
from promptopt.spec import load_spec
from promptopt.testing import DimensionCase, DimensionContract
from promptopt.validate import load_and_check

TASK = {
    "name": "dimensions",
    "model": "fake/m",
    "output": {"type": "label", "labels": ["positive", "negative"]},
    "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
}
SEARCH = {
    "instructions": {"variants": ["Decide the sentiment."], "propose": 1},
    "few_shot": {"max_k": 3, "strategies": ["random", "balanced", "bootstrapped"], "pool_seeds": 2},
    "models": ["fake/other"],
    "temperature": [0.7],
    "max_tokens": [32],
    "constrained": [True],
}
KINDS = ("instruction", "few_shot", "model", "temperature", "max_tokens", "constrained")
PROPOSAL = "Decide whether the review is positive or negative."


def truth(text: str) -> str:
    return "positive" if int(text.split()[-1]) % 2 else "negative"


def answer(request: ModelRequest) -> str:
    """The truth for a task row (bootstrapped demos need right answers); an instruction for the proposer."""
    last = str(request.messages[-1]["content"])
    return truth(last) if last.startswith("review ") else PROPOSAL


def built_space(folder: Path, task: dict[str, Any], search: dict[str, Any]) -> SearchSpace:
    rows = [{"input": {"text": f"review {i}"}, "expected": truth(f"review {i}")} for i in range(24)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"task": task, "dataset": {"file": "data.jsonl"}, "scorers": [{"type": "exact_match"}], "search": search}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    loaded = load_spec(folder / "spec.yaml")
    services = Services(backend=ScriptedBackend(answer))
    built = asyncio.run(
        build_space(loaded, load_and_check(loaded), services, run_id="run-1", seed=0, on_event=lambda event: None)
    )
    return built.space


@pytest.fixture(scope="module")
def full_space(tmp_path_factory: pytest.TempPathFactory) -> SearchSpace:
    return built_space(tmp_path_factory.mktemp("full"), TASK, SEARCH)


@pytest.fixture(scope="module")
def space_without_system_message(tmp_path_factory: pytest.TempPathFactory) -> SearchSpace:
    task = {**TASK, "prompt": [{"role": "user", "content": "Label it: {{text}}"}]}
    return built_space(tmp_path_factory.mktemp("no-system"), task, {"instructions": {"variants": ["Be brief."]}})


def case_of(space: SearchSpace, kind: str) -> DimensionCase:
    [dim] = [d for d in space.dimensions if d.kind == kind]
    return DimensionCase(dim, space.base, tuple(d for d in space.dimensions if d is not dim))


@pytest.fixture(params=[*KINDS, "fine_tune", "instruction-warm-start", "instruction-without-system-message"])
def dimension_case(request: pytest.FixtureRequest, full_space: SearchSpace) -> DimensionCase:
    if request.param == "fine_tune":
        models = {"ft1": "local/smollm2-135m+ft-0123456789abcdef", "ft2": "ft:gpt-4o-mini:org::abc123"}
        lineage = {"ft1": {"base_model": "local/smollm2-135m", "data_hash": "d" * 64, "rows": 40}}
        return DimensionCase(FineTuneDimension(models, lineage), full_space.base)
    if request.param == "instruction-warm-start":
        winner = full_space.base.with_instruction("PREVIOUS WINNER: label the review.")
        return case_of(rebase(full_space, full_space.base, [winner])[0], "instruction")
    if request.param == "instruction-without-system-message":
        return case_of(request.getfixturevalue("space_without_system_message"), "instruction")
    return case_of(full_space, request.param)


class TestBuiltinDimensions(DimensionContract):
    pass


def test_the_space_builder_made_every_kind_with_its_searched_values(full_space: SearchSpace) -> None:
    assert tuple(d.kind for d in full_space.dimensions) == KINDS  # so that no case above is silently missing
    instruction, few_shot = full_space.dimensions[:2]
    assert instruction.to_json()["sources"] == ["spec", "variant", "grounded"]
    assert sorted(few_shot.to_json()["pools"]) == ["balanced", "bootstrapped", "random"]


# Broken on purpose: each violates one clause of the contract, and the suite's test for it must fail.


class MutatingDimension(TemperatureDimension):
    """Notes its choice in the config it was given (``origin`` is a mutable dict) instead of in a copy."""

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        config.origin["temperature"] = params[self.param]
        return super().apply(config, params)


class NoisyDimension(TemperatureDimension):
    """Jitters the temperature it applies: the same params give different configurations."""

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        return super().apply(config, {self.param: float(params[self.param]) + random.random() / 10})


class ShiftedDimension(TemperatureDimension):
    """Its baseline is its second choice, not the spec's value."""

    def baseline(self) -> dict[str, Any]:
        return {self.param: self.choices[1]}


class ForgetfulDimension(TemperatureDimension):
    """Writes its choices as another kind's JSON (a copy-pasted ``to_json``)."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": "max_tokens", "choices": [int(c) for c in self.choices]}


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (MutatingDimension, DimensionContract.test_apply_is_pure_and_deterministic),
        (NoisyDimension, DimensionContract.test_apply_is_pure_and_deterministic),
        (ShiftedDimension, DimensionContract.test_baseline_reproduces_the_base_configuration),
        (ForgetfulDimension, DimensionContract.test_json_round_trip_gives_an_equal_dimension),
    ],
)
def test_the_suite_catches_a_broken_dimension(full_space: SearchSpace, broken: type, check: Any) -> None:
    case = DimensionCase(broken((full_space.base.params.temperature, 0.7)), full_space.base)
    with pytest.raises(AssertionError):
        check(DimensionContract(), case)
