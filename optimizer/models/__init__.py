"""Model backends: one async call from messages and parameters to text, tokens, cost and latency.

``LiteLLMBackend`` (every litellm provider plus the embedded ``local/...`` models) is imported on first use,
so ``import promptopt.models`` stays light: litellm takes seconds to import. ``FineTuneAPI`` is a provider's
fine-tuning API (``get_fine_tune_api``: litellm's, for OpenAI-compatible providers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.models._base import Constraint, ModelBackend, ModelRequest, ModelResponse
from promptopt.models._fake import ScriptedBackend
from promptopt.models._files import (
    ADAPTERS_ENV,
    LocalModelError,
    adapter_file,
    adapters_dir,
    finetuned_name,
    local_adapter_file,
    local_model_file,
    split_finetuned,
    write_adapter,
    write_atomically,
)
from promptopt.models._tuning import FineTuneAPI, JobStatus, ProviderJob

if TYPE_CHECKING:
    from promptopt.models._litellm import LiteLLMBackend, LiteLLMFineTuneAPI

LOCAL_DEFAULT_MODEL = "local/smollm2-135m"

__all__ = [
    "ADAPTERS_ENV",
    "LOCAL_DEFAULT_MODEL",
    "Constraint",
    "FineTuneAPI",
    "JobStatus",
    "LiteLLMBackend",
    "LiteLLMFineTuneAPI",
    "ModelBackend",
    "ModelRequest",
    "ModelResponse",
    "ProviderJob",
    "ScriptedBackend",
    "LocalModelError",
    "adapter_file",
    "adapters_dir",
    "finetuned_name",
    "get_backend",
    "get_fine_tune_api",
    "local_adapter_file",
    "local_model_file",
    "split_finetuned",
    "write_adapter",
    "write_atomically",
]


def get_backend(*, local_prefix_reuse: bool | None = None) -> LiteLLMBackend:
    """The model backend for real calls (cloud providers through litellm, and the embedded local models).

    Args:
        local_prefix_reuse: Reuse evaluated prompt prefixes on ``local/`` models; ``None`` follows
            ``PROMPTOPT_LOCAL_PREFIX_REUSE`` (on unless ``0``).
    """
    from promptopt.models._litellm import LiteLLMBackend

    return LiteLLMBackend(local_prefix_reuse=local_prefix_reuse)


def get_fine_tune_api(*, api_base: str | None = None) -> LiteLLMFineTuneAPI:
    """The fine-tuning API of an OpenAI-compatible provider at ``api_base`` (``None``: OpenAI's), through litellm."""
    from promptopt.models._litellm import LiteLLMFineTuneAPI

    return LiteLLMFineTuneAPI(api_base=api_base)


def __getattr__(name: str) -> Any:
    if name in ("LiteLLMBackend", "LiteLLMFineTuneAPI"):  # import litellm, hence only when asked for
        from promptopt.models import _litellm

        return getattr(_litellm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
