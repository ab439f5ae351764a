"""The public Python entry points behind the CLI: evaluate a spec, compare two experiments."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from promptopt.cache import ResponseCache
from promptopt.config import PromptConfig
from promptopt.data import Dataset
from promptopt.engine import Budget, CallLimiter, EvalResult, Evaluator, RowResult
from promptopt.models import ModelBackend
from promptopt.spec import LoadedSpec


def default_backend() -> ModelBackend:
    """The litellm backend (cloud providers and the embedded ``local/`` model)."""
    from promptopt.models import LiteLLMBackend

    return LiteLLMBackend()


async def evaluate_config(loaded: LoadedSpec, dataset: Dataset, config: PromptConfig, *, split: str,
                          backend: ModelBackend, cache: ResponseCache, store: Any,
                          budget: Budget | None = None, run_id: str | None = None,
                          trial_number: int | None = None, limiter: CallLimiter | None = None,
                          on_row: Callable[[RowResult], None] | None = None) -> EvalResult:
    """Run one configuration over one split of the spec's dataset as a full eval."""
    from promptopt.scorers import build_scorers

    evaluator = Evaluator(backend=backend, cache=cache, store=store, settings=loaded.spec.eval, budget=budget,
                          limiter=limiter)
    scorers = build_scorers(loaded.spec.scorers, base_dir=loaded.base_dir, backend=evaluator.as_backend(),
                            source=str(loaded.path))
    try:
        return await evaluator.run(config, dataset.split(split), scorers, name=loaded.spec.task.name,
                                   dataset_hash=dataset.hash, run_id=run_id, trial_number=trial_number,
                                   on_row=on_row)
    finally:
        await asyncio.gather(*(s.aclose() for s in scorers))


def evaluate_spec(loaded: LoadedSpec, dataset: Dataset, *, split: str = "validation",
                  backend: ModelBackend | None = None, cache: ResponseCache, store: Any,
                  on_row: Callable[[RowResult], None] | None = None) -> EvalResult:
    """Evaluate the spec's configuration as written (synchronous wrapper for the CLI)."""
    config = PromptConfig.from_task(loaded.spec.task)
    return asyncio.run(evaluate_config(loaded, dataset, config, split=split, backend=backend or default_backend(),
                                       cache=cache, store=store, on_row=on_row))
