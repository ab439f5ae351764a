"""A provider fine-tune (OpenAI-compatible, through litellm's fine-tuning API): the training examples as chat
JSONL, uploaded, trained by the provider and followed until it ends; the fine-tuned model is then called like
any other model (``openai/ft:<base>:...:<key>:...``).

A job is content-addressed like a LoRA (:func:`promptopt.finetune.adapter_key`: base model, training data,
parameters), and the key is the job's ``suffix``, so it is in the fine-tuned model's name. There is never a
second job for one key: a small record per key in the adapters folder (``<key>.provider.json``, written
atomically) keeps the uploaded file and the job, and without it the provider's job list is searched (a
succeeded job by its suffix, an unfinished one by its training file's name, ``promptopt-<key>.jsonl``). A run
killed while it polls finds its job again and polls on. A failed or cancelled job raises and its record is
removed, so the next run starts a new job.

Dollars: the estimated training tokens (each example's tokens on the base model's tokenizer, times the epochs)
times ``price_per_1m`` are reserved in the budget before anything is uploaded, and settled with the tokens the
provider reports it trained.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from promptopt.errors import BudgetExceeded, EvalFailed, ModelCallError
from promptopt.finetune._lora import TrainingExample, _key, data_hash
from promptopt.models import FineTuneAPI, JobStatus, ProviderJob, adapters_dir, write_atomically

if TYPE_CHECKING:
    from promptopt.engine import Budget

PROVIDER_PREFIX = "openai/"  # litellm's name for OpenAI and every OpenAI-compatible API


class ProviderParams(BaseModel):
    """How a provider job is trained; every field is part of its content hash (another endpoint is another
    job). ``learning_rate_multiplier`` ``None`` lets the provider choose (``auto``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    epochs: int = Field(3, ge=1, le=100)
    learning_rate_multiplier: float | None = Field(None, gt=0)
    max_rows: int = Field(200, ge=1)
    api_base: str | None = None

    def hyperparameters(self) -> dict[str, Any]:
        """OpenAI's ``hyperparameters`` of the job."""
        out: dict[str, Any] = {"n_epochs": self.epochs}
        if self.learning_rate_multiplier is not None:
            out["learning_rate_multiplier"] = self.learning_rate_multiplier
        return out


class Polling(BaseModel):
    """Seconds between polls: ``first_s``, growing by ``factor`` up to ``max_s``; ``max_errors`` retryable
    errors in a row (rate limits, server errors, lost connections) before following the job fails."""

    model_config = ConfigDict(frozen=True)
    first_s: float = Field(0.5, gt=0)
    factor: float = Field(2.0, ge=1)
    max_s: float = Field(60.0, gt=0)
    max_errors: int = Field(10, ge=0)

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(self.max_s, delay * self.factor)


class ProviderFineTune(BaseModel):
    """A provider fine-tune: the model name that serves it and what it was made from and cost."""

    model_config = ConfigDict(frozen=True)
    model: str  # openai/ft:..., called through litellm like any model
    base_model: str
    key: str
    data_hash: str
    params: ProviderParams
    rows: int
    job_id: str
    file_id: str
    trained_tokens: int
    usd: float  # paid by this call (0 when found again finished)
    train_s: float  # waited for the provider in this call
    reused: bool = False  # found finished: nothing was trained by this call


class _Record(BaseModel):
    """What is known of a key's job, kept beside the LoRA adapters."""

    key: str
    file_id: str | None = None
    job_id: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int = 0


def provider_key(base_model: str, examples: Sequence[TrainingExample], params: ProviderParams) -> str:
    """The content address of a provider job, as :func:`promptopt.finetune.adapter_key` is a LoRA's."""
    return _key(base_model, data_hash(examples[: params.max_rows]), params)


def training_file(examples: Sequence[TrainingExample]) -> bytes:
    """OpenAI's chat fine-tuning JSONL: each example's messages, then its answer as the assistant's."""
    lines = (json.dumps({"messages": _chat(e)}, ensure_ascii=False) for e in examples)
    return "".join(line + "\n" for line in lines).encode()


def training_tokens(api: FineTuneAPI, base_model: str, examples: Sequence[TrainingExample], epochs: int) -> int:
    """Tokens the provider trains on: every example's chat on the base model's tokenizer, ``epochs`` times."""
    return epochs * sum(api.count_tokens(base_model, _chat(e)) for e in examples)


def _chat(example: TrainingExample) -> list[dict[str, str]]:
    return [*example.messages, {"role": "assistant", "content": example.completion}]


async def train_provider(
    base_model: str,
    examples: Sequence[TrainingExample],
    params: ProviderParams,
    *,
    price_per_1m: float,
    api: FineTuneAPI,
    budget: Budget | None = None,
    folder: Path | None = None,
    polling: Polling = Polling(),
) -> ProviderFineTune:
    """Train (or find again, finished or still running) the provider fine-tune of ``base_model``
    (``openai/<model>``) on ``examples``.

    Raises:
        ValueError: no training example.
        BudgetExceeded: the estimated dollars do not fit ``budget``; nothing was uploaded.
        EvalFailed: the job failed or was cancelled (its id and the provider's message), or following it
            failed; no record of it is left to reuse.
        ModelCallError: the upload or the job's creation failed.
    """
    examples = list(examples)[: params.max_rows]
    if not examples:
        raise ValueError("a fine-tune needs at least one training example")
    job = _Job(base_model, examples, params, api, folder or adapters_dir())
    return await job.run(price_per_1m, budget, polling)


class _Job:
    """One call of :func:`train_provider`: the key, its record and the provider's job."""

    def __init__(
        self, base: str, examples: list[TrainingExample], params: ProviderParams, api: FineTuneAPI, folder: Path
    ) -> None:
        self.base, self.examples, self.params, self.api = base, examples, params, api
        self.data = data_hash(examples)
        self.key = _key(base, self.data, params)
        self.path = folder / f"{self.key}.provider.json"
        self.filename = f"promptopt-{self.key}.jsonl"
        self.record = _read(self.path) or _Record(key=self.key)

    async def run(self, price_per_1m: float, budget: Budget | None, polling: Polling) -> ProviderFineTune:
        start = time.perf_counter()
        if self.record.fine_tuned_model:
            return self._result(usd=0.0, train_s=0.0, reused=True)
        found = await self._find()
        if found is not None and found.status is JobStatus.SUCCEEDED:
            self._finished(found)
            return self._result(usd=0.0, train_s=0.0, reused=True)
        reserved = 0.0
        if found is None:
            reserved = self._reserve(price_per_1m, budget)
            found = await self._start(reserved, budget)
        self._save(job_id=found.id, file_id=found.training_file)
        done = await self._follow(found, polling)
        succeeded = done.status is JobStatus.SUCCEEDED
        usd = reserved if succeeded else 0.0  # what the provider does not report is the estimate, or nothing
        if done.trained_tokens is not None:
            usd = done.trained_tokens * price_per_1m / 1e6
        if budget is not None:  # a job found running is paid whether or not this run waits for it
            budget.settle(reserved, usd)
        if not succeeded:
            self._fail(done)
        self._finished(done)
        return self._result(usd=usd, train_s=time.perf_counter() - start, reused=False)

    async def _find(self) -> ProviderJob | None:
        """The key's job, unless it failed: the record's, else one from the provider's list."""
        if self.record.job_id:
            job = await self.api.retrieve(self.record.job_id)
            if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                self._fail(job)
            return job
        model = self.base.removeprefix(PROVIDER_PREFIX)
        async for job in self.api.jobs():
            if job.model == model and await self._is_ours(job):
                return job
        return None

    async def _is_ours(self, job: ProviderJob) -> bool:
        if job.status is JobStatus.SUCCEEDED:
            return f":{self.key}:" in (job.fine_tuned_model or "")
        if job.status.final:
            return False
        if job.training_file == self.record.file_id:
            return True
        try:
            return await self.api.file_name(job.training_file) == self.filename
        except ModelCallError as exc:
            if exc.retryable:  # not knowing could start a second job
                raise
            return False  # a file the provider no longer has is not ours to follow

    def _reserve(self, price_per_1m: float, budget: Budget | None) -> float:
        tokens = training_tokens(self.api, self.base, self.examples, self.params.epochs)
        usd = tokens * price_per_1m / 1e6
        if budget is None:
            return usd
        try:
            budget.reserve(0, usd)
        except BudgetExceeded as exc:
            raise BudgetExceeded(
                f"fine-tuning {self.base} on {len(self.examples)} rows x {self.params.epochs} epochs (about "
                f"{tokens:,} training tokens at ${price_per_1m:g} per 1M) would cost about ${usd:.4f}: {exc}; "
                "nothing was uploaded"
            ) from None
        return usd

    async def _start(self, reserved: float, budget: Budget | None) -> ProviderJob:
        try:
            file_id = self.record.file_id or await self.api.upload(self.filename, training_file(self.examples))
            self._save(file_id=file_id)
            return await self.api.create(
                model=self.base,
                training_file=file_id,
                hyperparameters=self.params.hyperparameters(),
                suffix=self.key,
            )
        except ModelCallError:
            if budget is not None:
                budget.settle(reserved, 0.0)  # no job: nothing to pay
            raise

    async def _follow(self, job: ProviderJob, polling: Polling) -> ProviderJob:
        delays, errors = polling.delays(), 0
        while not job.status.final:
            await asyncio.sleep(next(delays))
            try:
                job = await self.api.retrieve(job.id)
                errors = 0
            except ModelCallError as exc:
                errors += 1
                if not exc.retryable or errors > polling.max_errors:
                    raise EvalFailed(
                        f"fine-tune job {job.id} of {self.base}: following it failed ({exc}); run again to "
                        "follow the same job (it is not started twice)"
                    ) from None
        return job

    def _fail(self, job: ProviderJob) -> None:
        self.path.unlink(missing_ok=True)
        reason = f": {job.error}" if job.error else ""
        raise EvalFailed(
            f"fine-tune job {job.id} of {self.base} {job.status.value}{reason}; nothing was kept, and the next "
            "run starts a new job"
        )

    def _finished(self, job: ProviderJob) -> None:
        self._save(
            job_id=job.id,
            file_id=job.training_file,
            fine_tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens or 0,
        )

    def _save(self, **changes: Any) -> None:
        self.record = self.record.model_copy(update=changes)
        _write(self.path, self.record)

    def _result(self, *, usd: float, train_s: float, reused: bool) -> ProviderFineTune:
        return ProviderFineTune(
            model=PROVIDER_PREFIX + str(self.record.fine_tuned_model),
            base_model=self.base,
            key=self.key,
            data_hash=self.data,
            params=self.params,
            rows=len(self.examples),
            job_id=str(self.record.job_id),
            file_id=str(self.record.file_id),
            trained_tokens=self.record.trained_tokens,
            usd=usd,
            train_s=train_s,
            reused=reused,
        )


def _read(path: Path) -> _Record | None:
    try:
        return _Record.model_validate_json(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: the provider's list decides
        return None


def _write(path: Path, record: _Record) -> None:
    write_atomically(path, record.model_dump_json().encode())
