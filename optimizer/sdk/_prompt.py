"""What an application gets from the registry: one prompt version, ready to render into a model call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptopt.config import PromptConfig
from promptopt.errors import InputError
from promptopt.names import DEFAULT_LABEL, MAX_VERSION, is_label, is_prompt_name
from promptopt.sdk._render import litellm_kwargs, openai_kwargs


class PromptRef(BaseModel):
    """Which version an application asks for: one pinned ``version``, or whatever ``label`` points at."""

    model_config = ConfigDict(frozen=True)
    name: str
    label: str | None = None
    version: int | None = None

    @classmethod
    def of(cls, name: str, label: str | None = None, version: int | None = None) -> PromptRef:
        """Check the parts; neither label nor version means the ``production`` label."""
        if not is_prompt_name(name):
            raise InputError(
                "PromptClient.get", "name", f"{name!r} is not a prompt name (letters, digits, '_', '.', '-')"
            )
        if label is not None and version is not None:
            raise InputError("PromptClient.get", "version", "give a label or a version, not both")
        if version is not None:
            if not 1 <= version <= MAX_VERSION:
                raise InputError("PromptClient.get", "version", f"versions are whole numbers from 1, not {version}")
            return cls(name=name, version=version)
        label = DEFAULT_LABEL if label is None else label
        if not is_label(label):
            raise InputError(
                "PromptClient.get", "label", f"{label!r} is not a label (lower-case letters, digits, '_', '.', '-')"
            )
        return cls(name=name, label=label)

    @property
    def pinned(self) -> bool:
        """A version never changes, so a copy of it never expires."""
        return self.version is not None

    @property
    def key(self) -> str:
        """``name@label`` or ``name@v3``: safe as a file name."""
        return f"{self.name}@{self.label}" if self.version is None else f"{self.name}@v{self.version}"


class Prompt(BaseModel):
    """One prompt version as served to an application.

    ``stale`` is true when the registry could not be reached and this is the last copy known to be good (in
    memory or on disk); ``stale_reason`` says what failed and when the copy was fetched.

    Example:
        >>> prompt = PromptClient("https://prompts.internal").get("support-triage")  # doctest: +SKIP
        >>> litellm.completion(**prompt.render(ticket="My invoice is wrong"))  # doctest: +SKIP
    """

    model_config = ConfigDict(frozen=True)
    name: str
    version: int = Field(ge=1)
    label: str | None = Field(default=None, description="The label it was looked up by, if any.")
    config: PromptConfig
    config_hash: str
    fetched_at: datetime
    stale: bool = False
    stale_reason: str | None = None

    def messages(self, /, **variables: Any) -> list[dict[str, str]]:
        """The chat messages with ``variables`` filled in (sandboxed, strict: a missing one is a KeyError)."""
        return self.config.render(variables)

    def render(self, /, **variables: Any) -> dict[str, Any]:
        """Keyword arguments for ``litellm.completion``: model, messages, decoding parameters, tools,
        response format."""
        return litellm_kwargs(self.config, variables)

    def render_openai(self, /, **variables: Any) -> dict[str, Any]:
        """Keyword arguments for ``OpenAI().chat.completions.create`` (no ``openai/`` prefix, no litellm
        routing keywords)."""
        return openai_kwargs(self.config, variables)
