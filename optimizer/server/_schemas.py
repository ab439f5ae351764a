"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptopt.names import Label, Version

_WHO = Field(
    default=None, max_length=200, pattern=r"^[^\x00]*\S[^\x00]*$", description="Who asks (kept in the audit log)."
)
_WHY = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$", description="Why (kept in the audit log).")


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Selector(_Body):
    """Which version: ``version``, else the one ``label`` points at, else the ``production`` label."""

    label: Label | None = Field(default=None, examples=["production"])
    version: Version | None = None

    @model_validator(mode="after")
    def _one(self) -> Selector:
        if self.label is not None and self.version is not None:
            raise ValueError("give a label or a version, not both")
        return self


class _Variables(Selector):
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="Values of the template's variables.",
        examples=[{"text": "The soup was cold."}],
    )


class RenderRequest(_Variables):
    prompt: str | None = Field(
        default=None,
        max_length=100,
        description="Which prompt of a code task's version to render (required for one; left out for a "
        "one-prompt version).",
        examples=["answer"],
    )


class RenderResponse(_Body):
    """``litellm.completion(messages=messages, **params)``: ``params`` holds the model and decoding settings."""

    name: str
    version: int
    config_hash: str = Field(description="The version's content hash (a code task's: its whole bundle's).")
    prompt: str | None = Field(default=None, description="The prompt of a code task's version that was rendered.")
    messages: list[dict[str, Any]]
    params: dict[str, Any]


class InvokeRequest(_Variables):
    timeout_s: float = Field(60.0, gt=0, le=600, description="Timeout of the model call.")


class InvokeResponse(_Body):
    name: str
    version: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    tool_calls: list[dict[str, Any]] | None = None


class LabelRequest(_Body):
    version: Version = Field(description="The version the label will point at.")
    why: str | None = _WHY
    who: str | None = _WHO


class RollbackRequest(_Body):
    why: str | None = _WHY
    who: str | None = _WHO
