"""A run's fine-tune jobs (``search.fine_tune``): their training data, each trained once before the search
(found again by its content hash by every later trial and run), and the dimension that offers them.

A job's examples are the spec's prompt as written (its instruction, no demos) rendered for train cases, with
the expected answer as the completion (``data: train``), or only the train cases the spec's prompt already
answered right in the pre-pass (``data: traces``, bootstrapped successes as DSPy's BootstrapFinetune uses).
Never validation, confirmation or test cases: the verdict stays held out.

Local jobs train a LoRA on CPU in a worker thread (torch releases the GIL), so the run's event loop stays
free; training time counts in the run's wall time and costs no model calls and no dollars.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from promptopt.config import PromptConfig, example_output
from promptopt.data import Dataset
from promptopt.engine import request_for
from promptopt.errors import EvalFailed
from promptopt.search._build import BOOTSTRAP_SAMPLE, PrePass
from promptopt.search._events import FineTuneTrained, OnEvent
from promptopt.search_spaces import FineTuneDimension
from promptopt.spec import FineTuneJob, LoadedSpec

if TYPE_CHECKING:
    from promptopt.finetune import Adapter, TrainingExample

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
    """Per job, before anything runs: training rows, tokens (estimated from characters), seconds and dollars
    (a local LoRA: 0). ``data: traces`` rows are an upper bound (the pre-pass decides which cases are kept)."""
    out: dict[str, dict[str, Any]] = {}
    for name, job in loaded.spec.search.fine_tune.named():
        rows = min(job.max_rows, sum(1 for c in dataset.train.cases if c.expected is not None))
        if job.data == "traces":
            rows = min(rows, BOOTSTRAP_SAMPLE)
        examples = training_examples(loaded, dataset, job.model_copy(update={"data": "train"}), PrePass((), ()))
        chars = sum(len(_text(e)) for e in examples[:rows])
        tokens = int(chars * TOKENS_PER_CHAR) * job.epochs
        out[name] = {
            "base": job.base_model(loaded.spec.task.model),
            "data": job.data,
            "rows": rows,
            "epochs": job.epochs,
            "training_tokens": tokens,
            "train_s": round(tokens / TRAIN_TOKENS_PER_S, 1),
            "usd": 0.0,
        }
    return out


def _text(example: TrainingExample) -> str:
    return "".join(str(m.get("content", "")) for m in example.messages) + example.completion


async def train_fine_tunes(
    loaded: LoadedSpec, dataset: Dataset, pre: PrePass, *, on_event: OnEvent
) -> FineTuneDimension | None:
    """Train (or find again) every job of the spec; ``None`` when the spec asks for none.

    Raises:
        EvalFailed: a job has no training example (``data: traces`` and no train case answered right).
    """
    jobs = loaded.spec.search.fine_tune.jobs
    if not jobs:
        return None
    from promptopt.finetune import LoraParams, train_lora

    models: dict[str, str] = {}
    lineage: dict[str, dict[str, Any]] = {}
    for i, (name, job) in enumerate(loaded.spec.search.fine_tune.named()):
        examples = training_examples(loaded, dataset, job, pre)
        if not examples:
            raise EvalFailed(
                f"{loaded.path}: search.fine_tune.jobs[{i}] ({name}): no training example; with data: traces "
                "only train cases the spec's prompt answered right in the pre-pass are used, and it got none right"
            )
        params = LoraParams(
            rank=job.rank, alpha=job.alpha, epochs=job.epochs, learning_rate=job.learning_rate, max_rows=job.max_rows
        )
        adapter = await asyncio.to_thread(train_lora, job.base_model(loaded.spec.task.model), examples, params)
        models[name] = adapter.model
        lineage[name] = _lineage(job, adapter)
        on_event(FineTuneTrained(name, adapter.model, adapter.rows, adapter.train_s, adapter.reused))
    return FineTuneDimension(models, lineage)


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
