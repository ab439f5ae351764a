"""Instruction wording, model and decoding dimensions, and the place for fine-tuned models."""

from __future__ import annotations

from typing import Any, ClassVar

from optuna.distributions import BaseDistribution, CategoricalDistribution

from promptopt.config import PromptConfig
from promptopt.search_spaces._base import Dimension


class InstructionDimension(Dimension):
    """Which instruction (system message) to use. Candidate 0 is the spec's own wording.

    ``sources`` says where each came from ("spec", "variant", "grounded", "dspy").
    """

    kind: ClassVar[str] = "instruction"

    def __init__(self, candidates: tuple[str, ...], sources: tuple[str, ...] | None = None) -> None:
        if not candidates:
            raise ValueError("an instruction dimension needs at least the spec's own instruction")
        self.candidates = tuple(candidates)
        self.sources = tuple(sources) if sources else ("spec",) + ("variant",) * (len(candidates) - 1)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {"instruction": CategoricalDistribution(list(range(len(self.candidates))))}

    def baseline(self) -> dict[str, Any]:
        return {"instruction": 0}

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        idx = int(params["instruction"])
        return config.with_instruction(self.candidates[idx]).model_copy(
            update={"origin": {**config.origin, "instruction": self.sources[idx]}}
        )

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "candidates": list(self.candidates), "sources": list(self.sources)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstructionDimension:
        return cls(tuple(data["candidates"]), tuple(data["sources"]))


class _ChoiceDimension(Dimension):
    """One categorical parameter whose first choice is the spec's value."""

    param: ClassVar[str]

    def __init__(self, choices: tuple[Any, ...]) -> None:
        if not choices:
            raise ValueError(f"{self.param}: give at least one choice")
        self.choices = tuple(dict.fromkeys(choices))

    def distributions(self) -> dict[str, BaseDistribution]:
        return {self.param: CategoricalDistribution(list(self.choices))}

    def baseline(self) -> dict[str, Any]:
        return {self.param: self.choices[0]}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "choices": list(self.choices)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _ChoiceDimension:
        return cls(tuple(data["choices"]))


class ModelDimension(_ChoiceDimension):
    """Which litellm model (any mix of providers and the local model)."""

    kind: ClassVar[str] = "model"
    param: ClassVar[str] = "model"

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        return config.model_copy(update={"model": params[self.param]})


class TemperatureDimension(_ChoiceDimension):
    kind: ClassVar[str] = "temperature"
    param: ClassVar[str] = "temperature"

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        decoding = config.params.model_copy(update={"temperature": float(params[self.param])})
        return config.model_copy(update={"params": decoding})


class MaxTokensDimension(_ChoiceDimension):
    kind: ClassVar[str] = "max_tokens"
    param: ClassVar[str] = "max_tokens"

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        decoding = config.params.model_copy(update={"max_tokens": int(params[self.param])})
        return config.model_copy(update={"params": decoding})


class ConstrainedDimension(_ChoiceDimension):
    """Constrain the local model's output to the label list / JSON schema with a llama.cpp grammar."""

    kind: ClassVar[str] = "constrained"
    param: ClassVar[str] = "constrained"

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        return config.model_copy(update={"constrained": bool(params[self.param])})

    def design(self) -> dict[str, Any]:
        return {self.param: True} if True in self.choices else {}


class FineTuneDimension(_ChoiceDimension):
    """Fine-tuned variants of the task model, as litellm model names (e.g. ``ft:gpt-4o-mini:org::id``).

    The place a later change fills in: a fine-tuning job writes its model names here. Until then a spec
    cannot ask for one, and :func:`build_space` never creates this dimension.
    """

    kind: ClassVar[str] = "fine_tune"
    param: ClassVar[str] = "fine_tune"

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        return config.model_copy(update={"model": params[self.param]})
