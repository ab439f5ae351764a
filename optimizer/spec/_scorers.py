"""Scorer entries of a spec: a discriminated union on ``type``; the objective is their weighted mean."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ScorerSpecBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str | None = Field(None, description="Column name in records; defaults to the type.")
    weight: float = Field(1.0, ge=0, description="Weight in the objective (weighted mean of scorers).")

    @property
    def key(self) -> str:
        return self.name or self.type  # type: ignore[attr-defined]


class Normalize(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    case: bool = Field(True, description="Compare case-insensitively.")
    strip: bool = Field(True, description="Strip surrounding white space.")
    punctuation: bool = Field(False, description="Remove punctuation before comparing.")
    whitespace: bool = Field(True, description="Collapse runs of white space.")


class ExactMatchSpec(ScorerSpecBase):
    type: Literal["exact_match"]
    normalize: Normalize = Normalize()


class ContainsSpec(ScorerSpecBase):
    type: Literal["contains"]
    normalize: Normalize = Normalize()


class RegexSpec(ScorerSpecBase):
    type: Literal["regex"]
    pattern: str = Field(description="Python regular expression searched in the output.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class JsonValidSpec(ScorerSpecBase):
    type: Literal["json_valid"]
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="Optional JSON Schema to match.")


class JsonFieldSpec(ScorerSpecBase):
    type: Literal["json_field"]
    fields: tuple[str, ...] = Field(description="Dotted paths compared between output JSON and expected JSON.")


class NumericSpec(ScorerSpecBase):
    type: Literal["numeric"]
    tolerance: float = Field(0.0, ge=0, description="Absolute difference that still scores 1.")
    scale: float = Field(1.0, gt=0, description="Score falls linearly to 0 at tolerance + scale.")


class LevenshteinSpec(ScorerSpecBase):
    type: Literal["levenshtein"]
    normalize: Normalize = Normalize()


class EmbeddingSpec(ScorerSpecBase):
    type: Literal["embedding"]
    model: Literal["wordllama-l2-supercat"] = "wordllama-l2-supercat"


class LLMJudgeSpec(ScorerSpecBase):
    type: Literal["llm_judge"]
    model: str = Field(description="litellm model name of the judge, e.g. local/smollm2-135m or gpt-4o-mini.")
    prompt: str = Field(description="Judge prompt; may use {{input}}, {{output}}, {{expected}} and input fields.")
    choices: dict[str, float] = Field(description="Map from the judge's answer to a score in [0, 1].")
    params: dict[str, Any] = Field(default_factory=dict, description="Decoding parameters for the judge.")

    @field_validator("choices")
    @classmethod
    def _scores_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("give at least one choice, e.g. {yes: 1, no: 0}")
        bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"choice scores must lie in [0, 1], got {bad}")
        return value


class CustomSpec(ScorerSpecBase):
    type: Literal["custom"]
    function: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function returning a float in [0, 1] (or a bool).",
    )
    timeout_s: float = Field(10.0, gt=0, description="Seconds before the scorer is killed; that row fails.")


class ToolCallSpec(ScorerSpecBase):
    type: Literal["tool_call"]
    match: Literal["subset", "exact"] = Field(
        "subset",
        description="subset: every expected argument is present with an equal JSON value; exact: equal arguments.",
    )
    order: Literal["any", "strict"] = Field(
        "any", description="strict: the matched calls must come in the expected order (others may come between)."
    )
    prompt: str | None = Field(None, description="Look only at the tool calls of this prompt (a code task's).")
    expected_field: str = Field(
        "tool_calls", min_length=1, description="Key of the case's expected object holding the expected calls."
    )


class StepsSpec(ScorerSpecBase):
    type: Literal["steps"]
    max: int = Field(
        ge=1, description="Model calls that still score 1; the score falls linearly to 0 at twice as many."
    )
    prompt: str | None = Field(None, description="Count only the calls of this prompt (a code task's).")


ScorerSpec = Annotated[
    ExactMatchSpec
    | ContainsSpec
    | RegexSpec
    | JsonValidSpec
    | JsonFieldSpec
    | NumericSpec
    | LevenshteinSpec
    | EmbeddingSpec
    | LLMJudgeSpec
    | CustomSpec
    | ToolCallSpec
    | StepsSpec,
    Field(discriminator="type"),
]

SCORER_TYPES = (
    "exact_match",
    "contains",
    "regex",
    "json_valid",
    "json_field",
    "numeric",
    "levenshtein",
    "embedding",
    "llm_judge",
    "custom",
    "tool_call",
    "steps",
)
