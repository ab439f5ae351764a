"""What an application gets from the registry: one prompt version, ready to render into a model call, or a
code task's version, whose named prompts render the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promptopt.config import PipelineConfig, PromptConfig, TaskConfig
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

    A code task's version is one bundle: ``config`` is a :class:`~promptopt.config.PipelineConfig`,
    ``function`` and ``code_hash`` name the code it was optimized with, and :meth:`prompt` gives each named
    prompt as a ``Prompt`` of its own that renders like a one-prompt version (``render`` on the bundle itself
    says to pick a prompt). ``config_hash`` is always the registered version's.

    Example:
        >>> prompt = PromptClient("https://prompts.internal").get("support-triage")  # doctest: +SKIP
        >>> litellm.completion(**prompt.render(ticket="My invoice is wrong"))  # doctest: +SKIP
        >>> answer = PromptClient("https://prompts.internal").get("qa-pipeline").prompt("answer")  # doctest: +SKIP
        >>> litellm.completion(**answer.render(question="Where is my parcel?"))  # doctest: +SKIP
    """

    model_config = ConfigDict(frozen=True)
    name: str
    version: int = Field(ge=1)
    label: str | None = Field(default=None, description="The label it was looked up by, if any.")
    config: TaskConfig
    config_hash: str
    fetched_at: datetime
    stale: bool = False
    stale_reason: str | None = None
    part: str | None = Field(default=None, description="Which prompt of a code task's version this is (prompt()).")

    @property
    def function(self) -> str | None:
        """A code task's function (``pkg.module:name``); ``None`` for one prompt."""
        return self.config.function if isinstance(self.config, PipelineConfig) else None

    @property
    def code_hash(self) -> str | None:
        """The hash of the function's module code the version was optimized with; ``None`` for one prompt."""
        return self.config.code_hash if isinstance(self.config, PipelineConfig) else None

    @property
    def prompts(self) -> tuple[str, ...]:
        """The names of a code task's prompts, in order; ``()`` for one prompt."""
        return tuple(self.config.prompts) if isinstance(self.config, PipelineConfig) else ()

    def prompt(self, name: str) -> Prompt:
        """Prompt ``name`` of a code task's version, with the same ``render``, ``render_openai`` and
        ``messages`` as a one-prompt version (and this version's name, number, label and staleness).

        Raises:
            KeyError: no such prompt (the message lists them), or this version is one prompt.
        """
        if not isinstance(self.config, PipelineConfig):
            raise KeyError(f"{self._title} is one prompt, not a code task; render it directly")
        return self.model_copy(update={"config": self.config.prompt(name), "part": name})

    def messages(self, /, **variables: Any) -> list[dict[str, str]]:
        """The chat messages with ``variables`` filled in (sandboxed, strict: a missing one is a KeyError)."""
        return self._one().render(variables)

    def render(self, /, **variables: Any) -> dict[str, Any]:
        """Keyword arguments for ``litellm.completion``: model, messages, decoding parameters, tools,
        response format."""
        return litellm_kwargs(self._one(), variables)

    def render_openai(self, /, **variables: Any) -> dict[str, Any]:
        """Keyword arguments for ``OpenAI().chat.completions.create`` (no ``openai/`` prefix, no litellm
        routing keywords)."""
        return openai_kwargs(self._one(), variables)

    @property
    def _title(self) -> str:
        return f"{self.name} v{self.version}" + (f" prompt {self.part!r}" if self.part else "")

    def _one(self) -> PromptConfig:
        if isinstance(self.config, PipelineConfig):
            raise InputError(
                "Prompt.render",
                "prompt",
                f"{self._title} is a code task with prompts {list(self.config.prompts)}; render one of them, "
                f"e.g. .prompt({next(iter(self.config.prompts), 'name')!r}).render(...)",
            )
        return self.config
