"""Compare two experiments row by row: mean difference per scorer, and the cases that improved or regressed.

"8% better" can hide "15% better and 7% worse"; this answers that in one call.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from promptopt.engine import EvalResult, RowResult
from promptopt.stats import paired_bootstrap_ci, paired_permutation_p


class CaseChange(BaseModel):
    model_config = ConfigDict(frozen=True)
    case_id: str
    input: dict[str, Any]
    expected: Any
    output_a: str | None
    output_b: str | None
    score_a: float
    score_b: float


class ScorerDelta(BaseModel):
    model_config = ConfigDict(frozen=True)
    scorer: str
    mean_a: float | None
    mean_b: float | None
    delta: float | None
    improved: int
    regressed: int
    unchanged: int


class Comparison(BaseModel):
    """B relative to A on the cases both scored (errors on either side are counted, not compared)."""

    model_config = ConfigDict(frozen=True)
    experiment_a: str
    experiment_b: str
    paired_cases: int
    only_in_one: int
    errors_a: int
    errors_b: int
    scorers: tuple[ScorerDelta, ...]
    objective_delta: float | None
    objective_ci95: tuple[float, float] | None
    p_value: float | None
    improved: tuple[CaseChange, ...]
    regressed: tuple[CaseChange, ...]


def _by_case(rows: tuple[RowResult, ...]) -> dict[str, list[RowResult]]:
    out: dict[str, list[RowResult]] = {}
    for r in rows:
        out.setdefault(r.case_id, []).append(r)
    return out


def _mean_score(rows: list[RowResult], key: str | None) -> float | None:
    vals = [
        v
        for v in ((r.objective if key is None else r.scores.get(key)) for r in rows if r.error is None)
        if v is not None
    ]
    return sum(vals) / len(vals) if vals else None


def compare(a: EvalResult, b: EvalResult, *, seed: int = 0) -> Comparison:
    """Paired comparison of B against A."""
    ra, rb = _by_case(a.rows), _by_case(b.rows)
    common = [c for c in ra if c in rb]
    names = sorted({k for r in a.rows + b.rows for k in r.scores})
    deltas = []
    for name in names:
        pairs = [
            (x, y)
            for x, y in ((_mean_score(ra[c], name), _mean_score(rb[c], name)) for c in common)
            if x is not None and y is not None
        ]
        mean_a = sum(x for x, _ in pairs) / len(pairs) if pairs else None
        mean_b = sum(y for _, y in pairs) / len(pairs) if pairs else None
        deltas.append(
            ScorerDelta(
                scorer=name,
                mean_a=mean_a,
                mean_b=mean_b,
                delta=None if mean_a is None or mean_b is None else mean_b - mean_a,
                improved=sum(y > x for x, y in pairs),
                regressed=sum(y < x for x, y in pairs),
                unchanged=sum(y == x for x, y in pairs),
            )
        )
    changes: list[CaseChange] = []
    for c in common:
        sa, sb = _mean_score(ra[c], None), _mean_score(rb[c], None)
        if sa is None or sb is None:
            continue
        first_a, first_b = ra[c][0], rb[c][0]
        changes.append(
            CaseChange(
                case_id=c,
                input=first_a.input,
                expected=first_a.expected,
                output_a=first_a.output,
                output_b=first_b.output,
                score_a=sa,
                score_b=sb,
            )
        )
    xs = [ch.score_a for ch in changes]
    ys = [ch.score_b for ch in changes]
    ci = paired_bootstrap_ci(xs, ys, seed=seed) if changes else None
    return Comparison(
        experiment_a=a.experiment_id,
        experiment_b=b.experiment_id,
        paired_cases=len(changes),
        only_in_one=len(set(ra) ^ set(rb)),
        errors_a=sum(r.error is not None for r in a.rows),
        errors_b=sum(r.error is not None for r in b.rows),
        scorers=tuple(deltas),
        objective_delta=(sum(ys) - sum(xs)) / len(xs) if xs else None,
        objective_ci95=ci,
        p_value=paired_permutation_p(xs, ys, seed=seed) if changes else None,
        improved=tuple(ch for ch in changes if ch.score_b > ch.score_a),
        regressed=tuple(ch for ch in changes if ch.score_b < ch.score_a),
    )
