"""A run's fine-tune jobs (``search.fine_tune``): their training data, each trained once before the search
(found again by its content hash by every later trial and run), and the dimension that offers them.

A job's examples are the spec's prompt as written (its instruction, no demos) rendered for train cases, with
the expected answer as the completion (``data: train``), or only the train cases the spec's prompt already
answered right in the pre-pass (``data: traces``, bootstrapped successes as DSPy's BootstrapFinetune uses).
Never validation, confirmation or test cases: the verdict stays held out.

Local jobs train a LoRA on CPU in a worker thread (torch releases the GIL), so the run's event loop stays
free; training time counts in the run's wall time and costs no model calls and no dollars. Provider jobs
(``openai/<model>`` bases) train on the task's endpoint through litellm's fine-tuning API
(:func:`promptopt.finetune.train_provider`): their estimated dollars are reserved in the budget before anything
is uploaded, and the time waited for the provider counts in the run's wall time.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from promptopt.config import PromptConfig, example_output
from promptopt.data import Dataset
from promptopt.engine import LocalBudget, request_for
from promptopt.errors import BudgetExceeded, EvalFailed
from promptopt.search._build import BOOTSTRAP_SAMPLE, PrePass
from promptopt.search._events import FineTuneTrained, OnEvent
from promptopt.search_spaces import FineTuneDimension
from promptopt.spec import FineTuneJob, LoadedSpec

if TYPE_CHECKING:
    from promptopt.engine import Budget
    from promptopt.finetune import Adapter, LoraTrainer, TrainingExample

TOKENS_PER_CHAR = 0.3  # a rough rule for English text (about 3.3 characters a token), for dry-run estimates
# Training tokens (as counted above) a second, measured by experiments/bench_finetune.py at ac7b7ff: SST-2,
# 200 rows x 2 epochs = 16,450 counted tokens in 177 s on 2 cores, model loading included (the chat
# template's own tokens are not counted, so this rate is per counted token, not per real one).
TRAIN_TOKENS_PER_S = 93.0


def training_examples(loaded: LoadedSpec, dataset: Dataset, job: FineTuneJob, pre: PrePass) -> list[TrainingExample]:
    """The job's examples: at most ``max_rows``, a sample of the train split fixed by the data (the same
    adapter for every seed, unless a seeded confirmation slice or, for ``traces``, the seeded pre-pass sample
    changes which train cases there are)."""
    from promptopt.finetune import TrainingExample

    if job.data == "traces":
        pairs: list[tuple[dict[str, Any], str]] = [(e.input, e.output) for e in pre.correct]
    else:
        pairs = [(c.input, example_output(c.expected)) for c in dataset.train.cases if c.expected is not None]
    if len(pairs) > job.max_rows:
        keep = sorted(random.Random(f"fine_tune:{dataset.hash}").sample(range(len(pairs)), job.max_rows))
        pairs = [pairs[i] for i in keep]
    base_model = job.base_model(loaded.spec.task.model)
    base = PromptConfig.from_task(loaded.spec.task).model_copy(update={"model": base_model})
    return [
        TrainingExample(messages=tuple(request_for(base, inp, 60.0).messages), completion=answer)
        for inp, answer in pairs
    ]


def estimate_fine_tunes(loaded: LoadedSpec, dataset: Dataset) -> dict[str, dict[str, Any]]:
    """Per job, before anything runs: training rows, tokens, seconds and dollars. A local LoRA's tokens are
    estimated from characters, its seconds from the measured rate, and it costs $0; a provider job's tokens
    are counted on its base model's tokenizer (litellm's), its dollars are those tokens at its price, and its
    seconds are unknown (``None``: the provider's queue and training time). ``data: traces`` rows are an
    upper bound (the pre-pass decides which cases are kept)."""
    out: dict[str, dict[str, Any]] = {}
    for name, job in loaded.spec.search.fine_tune.named():
        rows = min(job.max_rows, sum(1 for c in dataset.train.cases if c.expected is not None))
        if job.data == "traces":
            rows = min(rows, BOOTSTRAP_SAMPLE)
        examples = training_examples(loaded, dataset, job.model_copy(update={"data": "train"}), PrePass((), ()))
        base = job.base_model(loaded.spec.task.model)
        common = {"base": base, "data": job.data, "rows": rows, "epochs": job.epochs}
        if is_provider_job(base):
            out[name] = {**common, **_provider_estimate(loaded, job, base, examples[:rows])}
            continue
        tokens = int(sum(len(_text(e)) for e in examples[:rows]) * TOKENS_PER_CHAR) * job.epochs
        out[name] = {**common, "training_tokens": tokens, "train_s": round(tokens / TRAIN_TOKENS_PER_S, 1), "usd": 0.0}
    return out


def _provider_estimate(
    loaded: LoadedSpec, job: FineTuneJob, base: str, examples: list[TrainingExample]
) -> dict[str, Any]:
    from promptopt.finetune import training_tokens
    from promptopt.models import get_fine_tune_api

    tokens = training_tokens(get_fine_tune_api(api_base=_api_base(loaded)), base, examples, job.epochs)
    price = job.price_per_1m_training_tokens or 0.0
    return {
        "training_tokens": tokens,
        "train_s": None,
        "train_s_note": "unknown for a provider fine-tune (its queue and training time)",
        "usd": round(tokens * price / 1e6, 6),
    }


def _text(example: TrainingExample) -> str:
    return "".join(str(m.get("content", "")) for m in example.messages) + example.completion


def is_provider_job(base_model: str) -> bool:
    """Whether a job of ``base_model`` is a provider fine-tune (anything but an embedded ``local/`` model)."""
    return not base_model.startswith("local/")


def _api_base(loaded: LoadedSpec) -> str | None:
    """Where provider jobs train: the task's endpoint, since trials call the fine-tuned model with its params."""
    value = loaded.spec.task.params.extra.get("api_base")
    return str(value) if value else None


async def train_fine_tunes(
    loaded: LoadedSpec,
    dataset: Dataset,
    pre: PrePass,
    *,
    on_event: OnEvent,
    budget: Budget | None = None,
    trainer: LoraTrainer | None = None,
) -> FineTuneDimension | None:
    """Train (or find again) every job of the spec; ``None`` when the spec asks for none.

    A provider job reserves its estimated dollars in ``budget`` before it uploads anything; without one, in
    a budget of the spec's ``budget.usd`` alone.

    Raises:
        EvalFailed: a job has no training example (``data: traces`` and no train case answered right), or a
            provider job failed or was cancelled.
        BudgetExceeded: a provider job's estimated dollars do not fit the budget (nothing was uploaded).
    """
    jobs = loaded.spec.search.fine_tune.jobs
    if not jobs:
        return None
    budget = budget or LocalBudget(usd=loaded.spec.budget.usd)
    models: dict[str, str] = {}
    lineage: dict[str, dict[str, Any]] = {}
    for i, (name, job) in enumerate(loaded.spec.search.fine_tune.named()):
        where = f"{loaded.path}: search.fine_tune.jobs[{i}] ({name})"
        examples = training_examples(loaded, dataset, job, pre)
        if not examples:
            raise EvalFailed(
                f"{where}: no training example; with data: traces only train cases the spec's prompt answered "
                "right in the pre-pass are used, and it got none right"
            )
        base = job.base_model(loaded.spec.task.model)
        if is_provider_job(base):
            model, lineage[name], event = await _train_provider(loaded, job, base, examples, budget, where)
        else:
            model, lineage[name], event = await _train_lora(job, base, examples, trainer)
        models[name] = model
        on_event(FineTuneTrained(name, model, *event))
    return FineTuneDimension(models, lineage)


Trained = tuple[str, dict[str, Any], tuple[int, float, bool]]  # model, lineage, (rows, train_s, reused)


async def _train_lora(
    job: FineTuneJob, base: str, examples: list[TrainingExample], trainer: LoraTrainer | None
) -> Trained:
    from promptopt.finetune import LoraParams, train_in_thread

    params = LoraParams(
        rank=job.rank, alpha=job.alpha, epochs=job.epochs, learning_rate=job.learning_rate, max_rows=job.max_rows
    )
    adapter = await (trainer or train_in_thread)(base, examples, params)
    return adapter.model, _lineage(job, adapter), (adapter.rows, adapter.train_s, adapter.reused)


async def _train_provider(
    loaded: LoadedSpec,
    job: FineTuneJob,
    base: str,
    examples: list[TrainingExample],
    budget: Budget,
    where: str,
) -> Trained:
    from promptopt.finetune import ProviderParams, train_provider
    from promptopt.models import get_fine_tune_api

    api_base = _api_base(loaded)
    params = ProviderParams(
        epochs=job.epochs,
        learning_rate_multiplier=job.learning_rate if "learning_rate" in job.model_fields_set else None,
        max_rows=job.max_rows,
        api_base=api_base,
    )
    try:
        tuned = await train_provider(
            base,
            examples,
            params,
            price_per_1m=job.price_per_1m_training_tokens or 0.0,
            api=get_fine_tune_api(api_base=api_base),
            budget=budget,
        )
    except BudgetExceeded as exc:
        raise BudgetExceeded(f"{where}: {exc}. Raise budget.usd (or --max-usd), or lower epochs or max_rows") from None
    except EvalFailed as exc:
        raise EvalFailed(f"{where}: {exc}") from None
    lineage = {
        "base_model": base,
        "key": tuned.key,
        "data": job.data,
        "data_hash": tuned.data_hash,
        "rows": tuned.rows,
        "params": tuned.params.model_dump(mode="json"),
        "provider": "openai",
        "job_id": tuned.job_id,
        "file_id": tuned.file_id,
        "trained_tokens": tuned.trained_tokens,
        "usd": round(tuned.usd, 6),
        "train_s": round(tuned.train_s, 2),
        "reused": tuned.reused,
    }
    return tuned.model, lineage, (tuned.rows, tuned.train_s, tuned.reused)


def _lineage(job: FineTuneJob, adapter: Adapter) -> dict[str, Any]:
    """What the job's model was made from, and what training it cost this run (0 s when found again)."""
    return {
        "base_model": adapter.base_model,
        "key": adapter.key,
        "data": job.data,
        "data_hash": adapter.data_hash,
        "rows": adapter.rows,
        "params": adapter.params.model_dump(mode="json"),
        "file_sha256": adapter.file_sha256,
        "train_s": round(adapter.train_s, 2),
        "reused": adapter.reused,
    }
