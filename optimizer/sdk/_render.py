"""A prompt version rendered into the keyword arguments of one chat-completion call."""

from __future__ import annotations

from typing import Any

from promptopt.config import PromptConfig

# litellm routing and credential keywords that the OpenAI client does not take.
_LITELLM_ONLY = frozenset(
    {"api_base", "base_url", "api_key", "api_version", "custom_llm_provider", "num_retries", "timeout", "mock_response"}
)


def call_params(config: PromptConfig) -> dict[str, Any]:
    """Model, decoding parameters, tools and response format of ``config`` (:meth:`PromptConfig.call_params`)."""
    return config.call_params()


def litellm_kwargs(config: PromptConfig, variables: dict[str, Any]) -> dict[str, Any]:
    """``litellm.completion(**kwargs)`` arguments: rendered messages plus :func:`call_params`.

    Raises:
        KeyError: a variable the template reads is missing (the message names it).
    """
    return {**call_params(config), "messages": config.render(variables)}


def openai_kwargs(config: PromptConfig, variables: dict[str, Any]) -> dict[str, Any]:
    """``OpenAI().chat.completions.create(**kwargs)`` arguments: the provider prefix ``openai/`` dropped from
    the model, and litellm's routing keywords (``api_base``...) left out."""
    kwargs = {k: v for k, v in litellm_kwargs(config, variables).items() if k not in _LITELLM_ONLY}
    kwargs["model"] = kwargs["model"].removeprefix("openai/")
    return kwargs
