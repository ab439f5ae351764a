"""Gated promotion: the label moves only for a candidate significantly better than the incumbent measured
again on the same cases; every decision is in the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from promptopt.config import PromptConfig
from promptopt.engine import EvalResult
from promptopt.errors import InputError
from promptopt.registry import Lineage, Registry, promote_if_better
from promptopt.store import get_store
from tests.registry.helpers import config, eval_result

CASES = [f"case-{i}" for i in range(40)]
WEAK = {c: float(i % 2) for i, c in enumerate(CASES)}  # 0.50
STRONG = {c: 1.0 if i % 10 else 0.0 for i, c in enumerate(CASES)}  # 0.90, better on 16 cases
NOISY = {c: 1.0 - v if i < 4 else v for i, c in enumerate(CASES) for v in [WEAK[c]]}  # 0.50, different cases
SLIGHTLY = {**WEAK, CASES[0]: 1.0}  # +0.025 on one case


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    store = get_store(f"sqlite:///{tmp_path / 'gate.db'}")
    yield Registry(store)
    store.dispose()


class FakeEvaluate:
    """Scores a config by its instruction; records which configs were evaluated, in order."""

    def __init__(
        self,
        scores: dict[str, dict[str, float | None]],
        *,
        split: dict[str, str] | None = None,
        status: dict[str, str] | None = None,
        hook: Callable[[PromptConfig], None] | None = None,
    ) -> None:
        self.scores, self.split, self.status, self.hook = scores, split or {}, status or {}, hook
        self.calls: list[str] = []

    async def __call__(self, cfg: PromptConfig) -> EvalResult:
        await asyncio.sleep(0)
        self.calls.append(cfg.instruction)
        if self.hook is not None:
            self.hook(cfg)
        return eval_result(
            self.scores[cfg.instruction],
            split=self.split.get(cfg.instruction, "test"),
            status=self.status.get(cfg.instruction, "finished"),
            config_hash=cfg.hash,
        )


def gate(registry: Registry, candidate: str, evaluate: FakeEvaluate, **kwargs) -> object:
    return asyncio.run(
        promote_if_better(
            registry,
            "triage",
            config(candidate),
            evaluate=evaluate,
            who="ci",
            lineage=kwargs.pop("lineage", Lineage(test_score=0.9)),
            **kwargs,
        )
    )


def with_incumbent(registry: Registry, instruction: str = "weak") -> int:
    version, _ = registry.register("triage", config(instruction), created_by="alice")
    registry.set_label("triage", "production", version.version, who="alice")
    return version.version


def test_a_significantly_better_candidate_takes_the_label(registry: Registry) -> None:
    incumbent = with_incumbent(registry)
    evaluate = FakeEvaluate({"weak": WEAK, "strong": STRONG})
    decision = gate(registry, "strong", evaluate, margin=0.05, alpha=0.05)
    assert decision.promoted and decision.version == 2 and decision.incumbent_version == incumbent
    assert decision.lift == pytest.approx(0.4) and decision.p_value < 0.001
    assert decision.ci95[0] > 0.2 and decision.label == "production"
    assert evaluate.calls == ["weak", "strong"]  # the incumbent was measured again, not read from old numbers
    assert registry.get("triage", label="production").version == 2
    event = registry.history("triage")[-1]
    assert (event.kind, event.from_version, event.to_version, event.candidate_version) == ("promote", 1, 2, 2)
    assert event.evidence.lift == pytest.approx(0.4) and event.evidence.paired_cases == 40
    assert "beats the margin" in event.why


@pytest.mark.parametrize(
    ("candidate", "scores", "reason"),
    [
        ("noisy", NOISY, "is not above the margin"),
        ("slightly", SLIGHTLY, "is not significant (p >= alpha 0.05)"),
    ],
)
def test_an_insignificant_candidate_leaves_the_label_and_says_why(
    registry: Registry, candidate: str, scores, reason: str
) -> None:
    with_incumbent(registry)
    decision = gate(registry, candidate, FakeEvaluate({"weak": WEAK, candidate: scores}), margin=0.0)
    assert not decision.promoted and reason in decision.reason
    assert registry.get("triage", label="production").version == 1
    event = registry.history("triage")[-1]
    assert (event.kind, event.from_version, event.to_version, event.candidate_version) == ("refuse", 1, 1, 2)
    assert reason in event.why and event.evidence.p_value == decision.p_value
    assert registry.get("triage", version=2).config == config(candidate)  # registered all the same


def test_the_margin_is_a_floor_on_the_lift(registry: Registry) -> None:
    with_incumbent(registry)
    decision = gate(registry, "strong", FakeEvaluate({"weak": WEAK, "strong": STRONG}), margin=0.5)
    assert not decision.promoted and "not above the margin +0.5000" in decision.reason


def test_without_a_label_the_candidate_must_beat_the_baseline(registry: Registry) -> None:
    evaluate = FakeEvaluate({"baseline": WEAK, "strong": STRONG})
    decision = gate(registry, "strong", evaluate, baseline_config=config("baseline"))
    assert decision.promoted and decision.incumbent_version is None and evaluate.calls == ["baseline", "strong"]
    assert registry.labels("triage") == {"production": 1}
    assert [v.config.instruction for v in registry.versions("triage")] == ["strong"]  # baseline not registered
    with pytest.raises(InputError, match="pass the baseline config") as error:
        gate(registry, "other", FakeEvaluate({}), label="staging")
    assert error.value.field == "baseline_config"


def test_a_failed_eval_is_no_evidence(registry: Registry) -> None:
    with_incumbent(registry)
    evaluate = FakeEvaluate({"weak": WEAK, "strong": STRONG}, status={"strong": "failed"})
    decision = gate(registry, "strong", evaluate)
    assert not decision.promoted and decision.lift is None and "eval of v2 failed" in decision.reason
    assert registry.history("triage")[-1].kind == "refuse"


def test_the_holder_itself_is_not_evaluated_again(registry: Registry) -> None:
    with_incumbent(registry, "strong")
    evaluate = FakeEvaluate({})
    decision = gate(registry, "strong", evaluate)
    assert not decision.promoted and decision.version == 1 and "already holds" in decision.reason
    assert evaluate.calls == []


def test_evals_on_different_splits_are_refused(registry: Registry) -> None:
    with_incumbent(registry)
    with pytest.raises(ValueError, match="same split"):
        gate(registry, "strong", FakeEvaluate({"weak": WEAK, "strong": STRONG}, split={"strong": "validation"}))
    assert registry.get("triage", label="production").version == 1


def test_a_label_moved_while_deciding_is_not_overwritten(registry: Registry) -> None:
    with_incumbent(registry)
    other, _ = registry.register("triage", config("hotfix"), created_by="bob")

    def operator_moves_the_label(cfg: PromptConfig) -> None:
        if cfg.instruction == "strong":
            registry.set_label("triage", "production", other.version, who="bob", why="hotfix")

    evaluate = FakeEvaluate({"weak": WEAK, "strong": STRONG}, hook=operator_moves_the_label)
    decision = gate(registry, "strong", evaluate)
    assert not decision.promoted and "moved while deciding" in decision.reason
    assert decision.incumbent_version == other.version
    assert registry.get("triage", label="production").version == other.version
    assert [e.kind for e in registry.history("triage")] == ["set", "set", "refuse"]
