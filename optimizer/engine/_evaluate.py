"""A spec's eval in one call: the spec's scorers over one split of its dataset, for any configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from promptopt.config import TaskConfig, base_candidate
from promptopt.data import Dataset
from promptopt.engine._result import EvalResult, RowResult
from promptopt.engine._runner import Evaluator
from promptopt.engine._services import Origin, Services
from promptopt.spec import LoadedSpec


async def evaluate_config(
    loaded: LoadedSpec,
    dataset: Dataset,
    config: TaskConfig,
    *,
    split: str,
    services: Services,
    origin: Origin = Origin(),
    on_row: Callable[[RowResult], None] | None = None,
) -> EvalResult:
    """Run ``config`` over one split of the spec's dataset as a full eval, scored by the spec's scorers under
    the spec's eval settings (they replace ``services.settings``).

    Raises:
        EvalFailed: too many rows failed (the experiment is recorded as failed).
        BudgetExceeded: the budget ran out before the eval finished.
    """
    from promptopt.scorers import build_scorers
    from promptopt.tasks import importable_from

    if loaded.spec.task.is_code:
        importable_from(loaded.base_dir)  # its function lives beside its spec (in Ray workers too)
    evaluator = Evaluator(services.but(settings=loaded.spec.eval))
    scorers = build_scorers(
        loaded.spec.scorers, base_dir=loaded.base_dir, backend=evaluator.as_backend(), source=str(loaded.path)
    )
    try:
        return await evaluator.run(
            config,
            dataset.split(split),
            scorers,
            name=loaded.spec.task.name,
            dataset_hash=dataset.hash,
            origin=origin,
            on_row=on_row,
        )
    finally:
        evaluator.close()
        await asyncio.gather(*(s.aclose() for s in scorers))


def evaluate_spec(
    loaded: LoadedSpec,
    dataset: Dataset,
    *,
    split: str = "validation",
    services: Services,
    on_row: Callable[[RowResult], None] | None = None,
) -> EvalResult:
    """Evaluate the spec's configuration as written (synchronous, for the CLI)."""
    config = base_candidate(loaded)
    return asyncio.run(evaluate_config(loaded, dataset, config, split=split, services=services, on_row=on_row))
