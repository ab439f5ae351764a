"""Instruction wording, model and decoding dimensions, and fine-tuned models."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from promptopt.config import LabelCalibration, PromptConfig
from promptopt.search_spaces._base import Dimension


@dataclass(frozen=True)
class RejectedProposal:
    """A proposed instruction that never became a candidate, why, and what it was written from: its source
    (``operator:<name>``, ``reflect:cases``, ``reflect:<proposer>``, ``grounded`` ...) and its parent's index
    (``None``: written from the spec, not from a candidate)."""

    text: str
    source: str
    reason: str
    parent: int | None = None


class InstructionDimension(Dimension):
    """Which instruction (system message) to use. Candidate 0 is the spec's own wording.

    ``sources`` says where each came from ("spec", "variant", "operator:<name>", "grounded", "dspy",
    "reflect:..."); ``parents`` which candidate a child was written from (``None``: from the spec, before the
    search); ``rejected`` keeps the proposals that failed the check, with the reason.

    A *growing* dimension (the ``evolve`` search) takes new candidates during the run (:meth:`grown`). Its
    parameter is then an integer index whose upper bound grows with each generation: Optuna refuses a
    categorical parameter whose choices change within a study, but an integer's range may change. A fixed
    dimension keeps a categorical parameter, as runs kept before growing existed.
    """

    kind: ClassVar[str] = "instruction"

    def __init__(
        self,
        candidates: tuple[str, ...],
        sources: tuple[str, ...] | None = None,
        *,
        parents: tuple[int | None, ...] | None = None,
        rejected: tuple[RejectedProposal, ...] = (),
        growing: bool = False,
        generations: int = 0,
    ) -> None:
        if not candidates:
            raise ValueError("an instruction dimension needs at least the spec's own instruction")
        self.candidates = tuple(candidates)
        self.sources = tuple(sources) if sources else ("spec",) + ("variant",) * (len(candidates) - 1)
        self.parents = tuple(parents) if parents else (None,) * len(self.candidates)
        if not len(self.sources) == len(self.parents) == len(self.candidates):
            raise ValueError("an instruction dimension needs one source and one parent per candidate")
        self.rejected, self.growing, self.generations = tuple(rejected), growing, generations

    def distributions(self) -> dict[str, BaseDistribution]:
        if self.growing:
            return {"instruction": IntDistribution(0, len(self.candidates) - 1)}
        return {"instruction": CategoricalDistribution(list(range(len(self.candidates))))}

    def baseline(self) -> dict[str, Any]:
        return {"instruction": 0}

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        idx = int(params["instruction"])
        return config.with_instruction(self.candidates[idx]).model_copy(
            update={"origin": {**config.origin, "instruction": self.sources[idx]}}
        )

    def grown(self, added: list[tuple[str, str, int | None]], rejected: list[RejectedProposal]) -> InstructionDimension:
        """This dimension after one generation: ``added`` (text, source, parent) appended in order (a text
        already among the candidates is rejected as a duplicate), ``rejected`` kept beside the earlier ones."""
        candidates, sources, parents = list(self.candidates), list(self.sources), list(self.parents)
        refused = list(self.rejected) + list(rejected)
        known = {c.strip() for c in candidates}
        for text, source, parent in added:
            if text.strip() in known:
                refused.append(RejectedProposal(text, source, "same as another candidate", parent))
                continue
            known.add(text.strip())
            candidates.append(text)
            sources.append(source)
            parents.append(parent)
        return InstructionDimension(
            tuple(candidates),
            tuple(sources),
            parents=tuple(parents),
            rejected=tuple(refused),
            growing=self.growing,
            generations=self.generations + 1,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "candidates": list(self.candidates),
            "sources": list(self.sources),
            "parents": list(self.parents),
            "rejected": [asdict(r) for r in self.rejected],
            "growing": self.growing,
            "generations": self.generations,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstructionDimension:
        return cls(
            tuple(data["candidates"]),
            tuple(data["sources"]),
            parents=tuple(data["parents"]) if "parents" in data else None,  # runs kept before lineage existed
            rejected=tuple(RejectedProposal(**r) for r in data.get("rejected", ())),
            growing=bool(data.get("growing", False)),
            generations=int(data.get("generations", 0)),
        )


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
    """How the answer is produced: free text (``False``), constrained to the label list / JSON schema with a
    llama.cpp grammar (``True``), or, for labels, every label scored by its log-probability and corrected by a
    label bias fitted at the configuration's first eval (``"calibrated"``, see
    :class:`~promptopt.config.LabelCalibration`; ``prior``: the label shares the fit aims at, train's)."""

    kind: ClassVar[str] = "constrained"
    param: ClassVar[str] = "constrained"
    CALIBRATED: ClassVar[str] = "calibrated"

    def __init__(self, choices: tuple[Any, ...], prior: dict[str, float] | None = None) -> None:
        super().__init__(choices)
        self.prior = dict(prior or {})

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        value = params[self.param]
        if value == self.CALIBRATED:
            # A configuration calibrated already (a production version a re-optimization starts from) keeps its fit.
            calibration = config.calibration or LabelCalibration(prior=self.prior)
            return config.model_copy(update={"constrained": True, "calibration": calibration})
        return config.model_copy(update={"constrained": bool(value), "calibration": None})

    def design(self) -> dict[str, Any]:
        best = self._strongest()
        return {} if best is None else {self.param: best}

    def region(self) -> dict[str, list[Any]]:
        best = self._strongest()
        return {} if best is None else {self.param: [best]}

    def _strongest(self) -> Any:
        """The choice a practitioner tries first: calibrated label scores, else a constrained output."""
        return next((c for c in (self.CALIBRATED, True) if c in self.choices), None)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.prior:
            data["prior"] = self.prior
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConstrainedDimension:
        return cls(tuple(data["choices"]), data.get("prior"))


class FineTuneDimension(Dimension):
    """Which fine-tune serves the task: ``none`` (the configuration's own model) or one of the spec's
    ``search.fine_tune`` jobs, by name, whose fine-tuned model then replaces the configuration's.

    ``models`` maps a job's name to its model (``local/<base>+ft-<key>``: a LoRA the local provider loads;
    later, a provider's fine-tuned model name); ``lineage`` keeps, per job, what it was made from and what it
    cost (base model, training data hash, parameters, rows, adapter file hash, training seconds), stored with
    the run so that reports and the registry can say where a winner's model came from.
    """

    kind: ClassVar[str] = "fine_tune"
    param: ClassVar[str] = "fine_tune"
    NONE: ClassVar[str] = "none"

    def __init__(self, models: dict[str, str], lineage: dict[str, dict[str, Any]] | None = None) -> None:
        if not models:
            raise ValueError("a fine-tune dimension needs at least one fine-tuned model")
        if self.NONE in models:
            raise ValueError(f"{self.NONE!r} names the configuration's own model, not a fine-tune")
        self.models = dict(models)
        self.lineage = {name: dict(v) for name, v in (lineage or {}).items()}

    @property
    def choices(self) -> tuple[str, ...]:
        return (self.NONE, *self.models)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {self.param: CategoricalDistribution(list(self.choices))}

    def baseline(self) -> dict[str, Any]:
        return {self.param: self.NONE}

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        choice = params[self.param]
        if choice == self.NONE:
            return config
        return config.model_copy(update={"model": self.models[choice]})

    def training_s(self) -> float:
        """Seconds its jobs trained in the run that made them (0 for a job found again)."""
        return sum(float(job.get("train_s", 0.0)) for job in self.lineage.values())

    def training_usd(self) -> float:
        """Dollars its jobs cost in the run that made them (a provider's; a LoRA's and a job found again: 0)."""
        return sum(float(job.get("usd", 0.0)) for job in self.lineage.values())

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "models": dict(self.models), "lineage": self.lineage}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FineTuneDimension:
        return cls(dict(data["models"]), data.get("lineage") or {})
