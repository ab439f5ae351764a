"""The held-out verdict: baseline and best candidates on the test split, which the search never saw."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from promptopt.engine import EvalResult
from promptopt.stats import paired_bootstrap_ci, paired_permutation_p


class Lift(BaseModel):
    """Winner minus baseline on the test cases both scored."""

    model_config = ConfigDict(frozen=True)
    lift: float
    ci95: tuple[float, float]
    p_value: float
    paired_cases: int


def paired_lift(baseline: EvalResult, winner: EvalResult, *, seed: int = 0) -> Lift:
    a, b = baseline.objective_by_case(), winner.objective_by_case()
    common = [c for c in a if c in b]
    if not common:
        raise ValueError("baseline and winner share no scored test case")
    xs, ys = [a[c] for c in common], [b[c] for c in common]
    return Lift(lift=(sum(ys) - sum(xs)) / len(common), ci95=paired_bootstrap_ci(xs, ys, seed=seed),
                p_value=paired_permutation_p(xs, ys, seed=seed), paired_cases=len(common))
