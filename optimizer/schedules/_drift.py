"""Drift: the production version, scored again on fresh logs, against the test score it was registered with."""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.config import candidate_from_json
from promptopt.registry import PromptVersion
from promptopt.schedules._values import DriftAlert
from promptopt.search import RunResult
from promptopt.stats import paired_bootstrap_ci
from promptopt.store import Store


def mean_ci(values: Sequence[float], *, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Mean of ``values`` and its 95% percentile-bootstrap interval (cases resampled)."""
    lo, hi = paired_bootstrap_ci([0.0] * len(values), values, seed=seed)
    return sum(values) / len(values), (lo, hi)


def drift_alert(production: PromptVersion, label: str, fresh: Sequence[float], *, seed: int = 0) -> DriftAlert | None:
    """An alert when the fresh scores of ``production`` are below its registered test score by more than their
    confidence interval (the whole 95% interval lies below it); ``None`` otherwise or without a test score."""
    registered = production.lineage.test_score
    if registered is None or len(fresh) < 2:
        return None
    mean, (lo, hi) = mean_ci(fresh, seed=seed)
    if hi >= registered:
        return None
    return DriftAlert(
        prompt=production.name,
        version=production.version,
        label=label,
        registered_test_score=registered,
        fresh_score=mean,
        ci95=(lo, hi),
        cases=len(fresh),
    )


def check_drift(
    store: Store, production: PromptVersion | None, label: str, result: RunResult, *, seed: int = 0
) -> DriftAlert | None:
    """Drift of the version that held ``label`` when the run began, judged on the run's test split of fresh
    logs (the run evaluated it there as its baseline: trial 0 is the production version)."""
    baseline = result.baseline
    if production is None or baseline.test_experiment_id is None:
        return None
    if candidate_from_json(baseline.config).hash != production.config_hash:
        return None  # the run's baseline was not the production version: no fresh score of it
    fresh = list(store.get_result(baseline.test_experiment_id).objective_by_case().values())
    return drift_alert(production, label, fresh, seed=seed)
