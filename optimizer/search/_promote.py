"""After the verdict: register the winner, and move the label only if it beats the incumbent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.config import TaskConfig, candidate_from_json, on_code_of
from promptopt.data import Dataset, content_hash
from promptopt.engine import EvalResult
from promptopt.errors import EvalFailed
from promptopt.registry import Lineage, PromotionDecision, Registry, promote_if_better
from promptopt.search._plan import RunOptions
from promptopt.search._verdict import Verdict
from promptopt.search_spaces import FineTuneDimension, SearchSpace
from promptopt.spec import LoadedSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from promptopt.store import Store


async def promote_winner(
    store: Store,
    loaded: LoadedSpec,
    dataset: Dataset,
    *,
    run_id: str,
    space: SearchSpace,
    verdict: Verdict,
    options: RunOptions,
    incumbent_eval: Callable[[TaskConfig], Awaitable[EvalResult]],
) -> PromotionDecision:
    """Register the winner; move the spec's label only if it beats the incumbent (evaluated again with
    ``incumbent_eval`` on the same test split) or, for a new prompt, the spec's baseline. Configurations the
    verdict tested come from the cache."""
    settings, best = loaded.spec.registry, verdict.best
    winner = candidate_from_json(best.config)

    async def evaluate(config: TaskConfig) -> EvalResult:
        try:  # a code task's registered version is compared on the run's own code
            return await incumbent_eval(on_code_of(config, space.base))
        except EvalFailed as exc:  # a failed eval is no evidence: the gate refuses and says why
            if exc.experiment_id is None:
                raise
            return store.get_result(exc.experiment_id)

    lineage = Lineage(
        run_id=run_id,
        trial=best.trial,
        spec_hash=content_hash(loaded.spec.model_dump(mode="json", by_alias=True)),
        dataset_hash=dataset.hash,
        validation_score=best.validation_score,
        test_score=best.test_score,
        fine_tune=fine_tune_lineage(space, winner.model),
    )
    return await promote_if_better(
        Registry(store),
        loaded.spec.task.name,
        winner,
        evaluate=evaluate,
        who=options.who,
        lineage=lineage,
        margin=settings.margin,
        alpha=settings.alpha,
        label=settings.label,
        baseline_config=space.config(space.baseline()),
        seed=options.seed,
    )


def fine_tune_lineage(space: SearchSpace, model: str) -> dict[str, Any] | None:
    """What ``model`` was trained from when it is one of the run's fine-tunes (the job's lineage as the run
    recorded it, with the job's name, the model and its adapter key); ``None`` for any other model."""
    dim = space.find(FineTuneDimension)
    job = next((name for name, trained in (dim.models.items() if dim else ()) if trained == model), None)
    if dim is None or job is None:
        return None
    return {**dim.lineage.get(job, {}), "job": job, "model": model}  # the lineage has the job's key
