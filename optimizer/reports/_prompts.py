"""A prompt's leaderboard across time: every registered version and every run of its task, by model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from promptopt.config import candidate_from_json
from promptopt.engine import ExperimentRole
from promptopt.errors import NotFound
from promptopt.reports._values import PromptEntry, PromptLeaderboard
from promptopt.store import ExperimentRecord, RunRecord, Store

ALL = 2**31 - 1


def build_prompt_leaderboard(store: Store, name: str) -> PromptLeaderboard:
    """Every version of ``name`` in the registry and every run whose task is ``name``, oldest first, with
    scores, model calls, tokens and dollars (from the recorded evals).

    Raises:
        NotFound: the prompt has neither a registered version nor a run.
    """
    runs = store.list_runs(name=name, limit=ALL)
    versions, labels = _registry(store, name)
    if not runs and not versions:
        raise NotFound(
            f"no run and no registered version of a prompt named {name!r} (runs are named after the "
            f"spec's task.name; `optimize registry list` shows registered prompts)"
        )
    experiments: dict[str, list[ExperimentRecord]] = {}

    def of_run(run_id: str) -> list[ExperimentRecord]:
        if run_id not in experiments:
            experiments[run_id] = store.list_experiments(run_id=run_id, limit=ALL)
        return experiments[run_id]

    entries = [_run_entry(run, of_run(run.id)) for run in runs]
    entries += [_version_entry(v, labels, of_run(v.lineage.run_id) if v.lineage.run_id else []) for v in versions]
    entries.sort(key=lambda e: (e.created_at, e.kind, e.ref))
    return PromptLeaderboard(name=name, entries=tuple(entries), labels=labels, generated_at=datetime.now(UTC))


def _registry(store: Store, name: str) -> tuple[list[Any], dict[str, int]]:
    try:
        from promptopt.registry import Registry
    except ImportError:  # a build without the registry: runs only
        return [], {}
    registry = Registry(store)
    try:
        return registry.versions(name), registry.labels(name)
    except NotFound:
        return [], {}


def _totals(experiments: Sequence[ExperimentRecord]) -> tuple[int | None, int | None, float | None]:
    """Model calls, tokens and dollars of finished or failed evals; ``None`` each when there is none."""
    done = [e.summary for e in experiments if e.summary is not None]
    if not done:
        return None, None, None
    return (
        sum(s.model_calls for s in done),
        sum(s.task_tokens + s.scorer_tokens for s in done),
        sum(s.cost_usd for s in done),
    )


def _run_entry(run: RunRecord, experiments: list[ExperimentRecord]) -> PromptEntry:
    from promptopt.search import RunResult

    calls, tokens, usd = _totals(experiments)
    result = None if run.result is None else RunResult.model_validate(run.result)
    trials = {e.trial_number for e in experiments if e.role is ExperimentRole.TRIAL}
    best = result.best if result else None
    return PromptEntry(
        kind="run",
        ref=run.id,
        created_at=run.created_at,
        run_id=run.id,
        status=run.status,
        model=candidate_from_json(best.config).model if best else (experiments[-1].model if experiments else None),
        description=best.description if best else f"{run.status}: no verdict",
        validation_score=best.validation_score if best else None,
        test_score=best.test_score if best else None,
        trial=best.trial if best else None,
        trials=result.trials if result else len(trials),
        model_calls=result.model_calls if result else calls,
        tokens=tokens,
        cost_usd=result.cost_usd if result else usd,
        training_s=_run_training_s(run.space),
    )


def _run_training_s(space: dict[str, Any] | None) -> float | None:
    """What the run's fine-tune jobs took to train (``None``: it had none)."""
    from promptopt.search_spaces import FineTuneDimension, SearchSpace

    fine_tunes = SearchSpace.from_json(space).find(FineTuneDimension) if space else None
    return fine_tunes.training_s() if fine_tunes else None


def _version_entry(version: Any, labels: dict[str, int], experiments: list[ExperimentRecord]) -> PromptEntry:
    lineage = version.lineage
    trial_evals = [
        e
        for e in experiments
        if lineage.trial is not None
        and e.trial_number == lineage.trial
        and e.role in (ExperimentRole.TRIAL, ExperimentRole.VERDICT)
    ]
    calls, tokens, usd = _totals(trial_evals)
    return PromptEntry(
        kind="version",
        ref=f"v{version.version}",
        created_at=version.created_at,
        model=version.config.model,
        description=version.config.describe(),
        validation_score=lineage.validation_score,
        test_score=lineage.test_score,
        labels=tuple(sorted(k for k, v in labels.items() if v == version.version)),
        run_id=lineage.run_id,
        trial=lineage.trial,
        status=f"registered by {version.created_by}",
        model_calls=calls,
        tokens=tokens,
        cost_usd=usd,
        training_s=None if lineage.fine_tune is None else float(lineage.fine_tune.get("train_s", 0.0)),
    )
