"""A provider's fine-tuning API as a small interface: upload a training file, start a job, follow it.

:class:`promptopt.finetune` trains provider fine-tunes through it; the litellm implementation
(``promptopt.models._litellm.LiteLLMFineTuneAPI``, OpenAI-compatible APIs) is the only one that imports
litellm, and a test can substitute its own.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobStatus(StrEnum):
    """A provider job's state, as OpenAI names it; the last three are final."""

    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ProviderJob(BaseModel):
    """One fine-tuning job as the provider reports it. ``model`` is the provider's name of the base (no
    litellm prefix); ``fine_tuned_model`` is set once the job succeeded; ``error`` is the provider's message
    for a failed job."""

    model_config = ConfigDict(frozen=True)
    id: str
    status: JobStatus
    model: str
    training_file: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None


class FineTuneAPI(abc.ABC):
    """Contract: every method talks to one provider endpoint (``api_base``) and raises
    :class:`promptopt.errors.ModelCallError` on failure, ``retryable`` for rate limits, server errors and
    lost connections (the caller polls again), never with a credential in its message."""

    @abc.abstractmethod
    async def upload(self, filename: str, data: bytes) -> str:
        """Upload a training file (``purpose="fine-tune"``); returns its id."""

    @abc.abstractmethod
    async def file_name(self, file_id: str) -> str:
        """The name a file was uploaded under."""

    @abc.abstractmethod
    async def create(
        self, *, model: str, training_file: str, hyperparameters: dict[str, Any], suffix: str
    ) -> ProviderJob:
        """Start a job on ``model`` (a litellm name, ``openai/<model>``)."""

    @abc.abstractmethod
    async def retrieve(self, job_id: str) -> ProviderJob: ...

    @abc.abstractmethod
    def jobs(self) -> AsyncIterator[ProviderJob]:
        """Every job of the account, newest first, page by page."""

    @abc.abstractmethod
    async def cancel(self, job_id: str) -> ProviderJob: ...

    @abc.abstractmethod
    def count_tokens(self, model: str, messages: list[dict[str, str]]) -> int:
        """Tokens of one chat example on ``model``'s tokenizer (offline)."""
