"""Paired statistics for "is B better than A on the same cases": bootstrap interval and a permutation test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(b - a), resampling cases (pairs stay together)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if d.size == 0:
        raise ValueError("no paired cases")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def paired_permutation_p(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 20_000, seed: int = 0, alternative: str = "two-sided"
) -> float:
    """Sign-flip permutation test of mean(b - a) = 0 (exact for small n, Monte Carlo otherwise).

    ``alternative="greater"`` tests that B is better. Pairs with no difference carry no information and
    are kept (they flip to themselves). The p-value includes the observed arrangement, so it is never 0.

    Example:
        B right on five cases where A was wrong: only the observed one of the 2**5 sign flips is as extreme.

        >>> paired_permutation_p([0, 0, 0, 0, 0], [1, 1, 1, 1, 1], alternative="greater")
        0.03125
        >>> paired_permutation_p([0, 1], [0, 1])  # no difference at all
        1.0
    """
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if d.size == 0:
        raise ValueError("no paired cases")
    observed = d.mean()
    nz = d[d != 0]
    if nz.size == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    if nz.size <= 16:
        grid = np.array(np.meshgrid(*[[-1, 1]] * nz.size)).reshape(nz.size, -1).T
        means = (grid * np.abs(nz)).sum(axis=1) / d.size
        count_total = means.size
    else:
        signs = rng.choice([-1.0, 1.0], size=(resamples, nz.size))
        means = (signs * np.abs(nz)).sum(axis=1) / d.size
        count_total = resamples + 1
    if alternative == "greater":
        extreme = (means >= observed - 1e-12).sum()
    elif alternative == "less":
        extreme = (means <= observed + 1e-12).sum()
    else:
        extreme = (np.abs(means) >= abs(observed) - 1e-12).sum()
    if nz.size > 16:
        extreme += 1
    return float(min(1.0, extreme / count_total))


def format_p(p: float) -> str:
    """``p = 0.0312``, or ``p < 0.0001`` where four decimals would print a misleading 0.

    Example:
        >>> format_p(0.0312)
        'p = 0.0312'
        >>> format_p(5e-5)
        'p < 0.0001'
    """
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"
