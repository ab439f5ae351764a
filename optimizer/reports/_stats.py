"""The few numbers a report computes itself: a mean's bootstrap interval, the Pareto front, best-so-far."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from itertools import groupby

from promptopt.reports._values import Estimate
from promptopt.stats import paired_bootstrap_ci

CI_RESAMPLES = 2000  # per leaderboard row; percentile bounds move by well under 0.01 beyond this


def estimate(
    values: Sequence[float], *, mean: float | None = None, seed: int = 0, resamples: int = CI_RESAMPLES
) -> Estimate | None:
    """Mean of ``values`` with its 95% percentile-bootstrap interval (rows resampled); ``None`` when empty.

    ``mean`` overrides the computed mean with the figure the caller already reports (the trial's value as
    Optuna has it), so that the row shows one number; it must be the mean of the same values.
    """
    if not values:
        return None
    centre = sum(values) / len(values) if mean is None else mean
    if len(values) < 2:
        return Estimate(mean=centre, ci95=None, cases=len(values))
    # The interval of mean(values - 0) is the paired interval against a zero baseline: one implementation.
    lo, hi = paired_bootstrap_ci([0.0] * len(values), values, resamples=resamples, seed=seed)
    return Estimate(mean=centre, ci95=(min(lo, centre), max(hi, centre)), cases=len(values))


def pareto_front(points: Sequence[tuple[int, float, float]]) -> set[int]:
    """Keys of the points no other point beats on both quality (higher) and cost (lower).

    ``points`` are ``(key, quality, cost)``; equal points are all on the front (as in Optuna's ``best_trials``).
    """
    front: set[int] = set()
    best_quality = float("-inf")
    for _cost, group in groupby(sorted(points, key=lambda p: (p[2], -p[1])), key=lambda p: p[2]):
        at_cost = list(group)
        top = at_cost[0][1]
        if top > best_quality:
            front |= {p[0] for p in at_cost if p[1] == top}
            best_quality = top
    return front


def spread(scores: Sequence[float]) -> dict[str, float]:
    """Best, mean, median and worst of a non-empty list of scores."""
    return {
        "best": max(scores),
        "mean": statistics.fmean(scores),
        "median": statistics.median(scores),
        "worst": min(scores),
    }
