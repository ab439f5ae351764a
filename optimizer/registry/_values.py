"""Values the registry returns: immutable, and checking their own invariants."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promptopt.config import PipelineConfig, PromptConfig, TaskConfig
from promptopt.names import PromptName, Version

EventKind = Literal["set", "rollback", "promote", "refuse"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Lineage(_Frozen):
    """Where a version came from: the run and trial that found it, the spec and data it was scored on.

    ``fine_tune`` (``None`` for a prompt-only version): when the version's model is one of the run's
    fine-tunes, what it was trained from, as the run recorded it (job name, model name, adapter key, base model,
    training data and its hash, parameters, rows, adapter file hash, training seconds).
    """

    run_id: str | None = None
    trial: int | None = Field(default=None, ge=0)
    spec_hash: str | None = None
    dataset_hash: str | None = None
    validation_score: float | None = None
    test_score: float | None = None
    fine_tune: dict[str, Any] | None = None

    @field_validator("validation_score", "test_score")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number (a failed eval has no score, not NaN)")
        return value


class PromptVersion(_Frozen):
    """One immutable registered version of a prompt: its full configuration, content hash and lineage.

    ``config`` is a :class:`~promptopt.config.PromptConfig`, or for a code task the whole bundle, a
    :class:`~promptopt.config.PipelineConfig`: the function's import path and code hash and every named
    prompt's configuration, one version together. ``config_hash`` is the hash at registration: the identity of
    the version even if a later release of promptopt adds fields (with defaults) to the configuration.
    """

    name: PromptName
    version: Version
    config: TaskConfig = Field(
        description="One prompt's configuration, or a code task's bundle (it has `function`, `code_hash` and "
        "`prompts`: one configuration per named prompt)."
    )
    config_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    lineage: Lineage = Lineage()
    created_at: datetime
    created_by: str

    def prompt(self, name: str) -> PromptConfig:
        """The configuration of prompt ``name`` of a bundle.

        Raises:
            KeyError: no such prompt, or this version is one prompt (the message says which).
        """
        if not isinstance(self.config, PipelineConfig):
            raise KeyError(f"{self.name} v{self.version} is one prompt, not a code task; use its config")
        return self.config.prompt(name)


class PromptSummary(_Frozen):
    """A prompt name in the registry: its newest version and where its labels point."""

    name: str
    latest_version: int = Field(ge=1)
    labels: dict[str, int]
    updated_at: datetime = Field(description="When the newest version was registered.")


class Evidence(_Frozen):
    """The paired comparison behind a gated promotion: candidate minus incumbent (or baseline) per case."""

    lift: float
    ci95: tuple[float, float]
    p_value: float = Field(ge=0, le=1)
    paired_cases: int = Field(ge=1)
    margin: float
    alpha: float = Field(gt=0, le=1)


class LabelEvent(_Frozen):
    """One entry of the audit log of a prompt's labels.

    ``set``, ``rollback`` and ``promote`` entries record a label moving ``from_version`` -> ``to_version``
    (``from_version`` is ``None`` when the label was created). A ``refuse`` entry records a gated promotion
    that left the label where it was (``from_version == to_version``) and why; ``candidate_version`` is the
    version the gate considered.
    """

    id: int
    name: str
    label: str
    kind: EventKind
    from_version: int | None
    to_version: int | None
    candidate_version: int | None = None
    who: str
    why: str | None = None
    at: datetime
    evidence: Evidence | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LabelEvent:
        if self.kind == "refuse" and self.from_version != self.to_version:
            raise ValueError("a refused promotion leaves the label where it was")
        if self.kind != "refuse" and self.to_version is None:
            raise ValueError(f"a {self.kind} entry moves the label to a version")
        return self

    @property
    def moved(self) -> bool:
        """Whether the label changed version (setting a label to the version it holds is recorded, not a move)."""
        return self.kind != "refuse" and self.from_version != self.to_version


class PromotionDecision(_Frozen):
    """What :func:`~promptopt.registry.promote_if_better` decided, and the numbers it decided on.

    ``version`` is the candidate's version; ``lift``, ``ci95`` and ``p_value`` are ``None`` when no
    comparison ran (the candidate already held the label, or an eval failed).
    """

    version: int
    promoted: bool
    label: str
    reason: str
    lift: float | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    incumbent_version: int | None = None
