"""The CI gate: a candidate eval passes unless it scores below the incumbent's by more than a threshold on the
cases both scored. Regressions are listed whatever the outcome, so a reviewer sees what got worse."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from promptopt.compare import CaseChange, Comparison, compare
from promptopt.engine import EvalResult
from promptopt.reports._markdown import case_table, cell
from promptopt.reports._values import CaseDiff
from promptopt.stats import format_p

MAX_LISTED = 20
_TOLERANCE = 1e-9  # a drop equal to the threshold passes, whatever the float rounding of the means


class GateResult(BaseModel):
    """What :func:`gate` decided and why; ``markdown`` is ready for ``$GITHUB_STEP_SUMMARY`` or a PR comment."""

    model_config = ConfigDict(frozen=True)
    passed: bool
    reason: str
    threshold: float
    incumbent_mean: float | None
    candidate_mean: float | None
    delta: float | None
    markdown: str
    comparison: Comparison


def gate(candidate: EvalResult, incumbent: EvalResult, *, threshold: float) -> GateResult:
    """Pass ``candidate`` unless its mean objective on the paired cases is below ``incumbent``'s by more than
    ``threshold`` (a negative threshold demands an improvement of at least its size).

    A failed eval on either side, or no case scored by both, fails the gate: there is no evidence to pass on.

    Example:
        >>> result = gate(store.get_result(new_id), store.get_result(prod_id), threshold=0.01)  # doctest: +SKIP
        >>> print(result.markdown)
        ... raise SystemExit(0 if result.passed else 1)  # doctest: +SKIP

    Raises:
        ValueError: ``threshold`` is not a finite number.
    """
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number (the largest drop allowed), not {threshold!r}")
    cmp = compare(incumbent, candidate)
    a, b = incumbent.objective_by_case(), candidate.objective_by_case()
    common = [case for case in a if case in b]
    mean_a = sum(a[c] for c in common) / len(common) if common else None
    mean_b = sum(b[c] for c in common) / len(common) if common else None
    delta = None if mean_a is None or mean_b is None else mean_b - mean_a
    passed, reason = _decide(candidate, incumbent, delta, threshold)
    return GateResult(
        passed=passed,
        reason=reason,
        threshold=threshold,
        incumbent_mean=mean_a,
        candidate_mean=mean_b,
        delta=delta,
        comparison=cmp,
        markdown=_markdown(candidate, incumbent, cmp, passed, reason, mean_a, mean_b, threshold),
    )


def _decide(candidate: EvalResult, incumbent: EvalResult, delta: float | None, threshold: float) -> tuple[bool, str]:
    failed = [who for who, r in (("candidate", candidate), ("incumbent", incumbent)) if r.status != "finished"]
    if failed:
        return False, f"the {' and '.join(failed)} eval failed; a failed eval is no evidence"
    if delta is None:
        return False, "the two evals share no scored case, so nothing can be compared"
    if delta < -threshold - _TOLERANCE:
        return False, f"the candidate scores {-delta:.4f} below the incumbent, more than the {_allowed(threshold)}"
    return True, f"the candidate's difference {delta:+.4f} is within the {_allowed(threshold)}"


def _allowed(threshold: float) -> str:
    return f"allowed drop of {threshold:.4f}" if threshold >= 0 else f"required gain of {-threshold:.4f}"


def _markdown(
    candidate: EvalResult,
    incumbent: EvalResult,
    cmp: Comparison,
    passed: bool,
    reason: str,
    mean_a: float | None,
    mean_b: float | None,
    threshold: float,
) -> str:
    mark = "✅ passed" if passed else "❌ failed"
    lines = [
        f"### Eval gate {mark}",
        "",
        f"{reason[0].upper()}{reason[1:]}.",
        "",
        "| | incumbent | candidate |",
        "|---|---|---|",
        f"| experiment | `{incumbent.experiment_id[:12]}` | `{candidate.experiment_id[:12]}` |",
        f"| split | {cell(incumbent.split)} | {cell(candidate.split)} |",
        f"| mean objective on paired cases | {_num(mean_a)} | {_num(mean_b)} |",
        f"| failed rows | {cmp.errors_a} | {cmp.errors_b} |",
        "",
    ]
    if cmp.objective_delta is not None and cmp.objective_ci95 is not None and cmp.p_value is not None:
        lo, hi = cmp.objective_ci95
        lines += [
            f"Difference **{cmp.objective_delta:+.4f}** (95% CI {lo:+.4f} .. {hi:+.4f}, paired permutation "
            f"{format_p(cmp.p_value)}) on {cmp.paired_cases} paired cases; {_allowed(threshold)}. "
            f"**{len(cmp.regressed)} regressed**, {len(cmp.improved)} improved.",
            "",
        ]
    if incumbent.dataset_hash != candidate.dataset_hash:
        lines += [
            "Note: the two evals ran on different data (dataset hashes differ); only cases with the same "
            "id are compared.",
            "",
        ]
    if cmp.scorers:
        lines += ["| scorer | incumbent | candidate | delta | improved | regressed |", "|---|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {cell(d.scorer)} | {_num(d.mean_a)} | {_num(d.mean_b)} | {_num(d.delta, signed=True)} | "
            f"{d.improved} | {d.regressed} |"
            for d in cmp.scorers
        ]
        lines.append("")
    if cmp.regressed:
        worst = sorted(cmp.regressed, key=lambda c: c.score_b - c.score_a)[:MAX_LISTED]
        more = len(cmp.regressed) - len(worst)
        lines += [
            f"#### Regressed cases ({len(cmp.regressed)}{f', the worst {len(worst)} listed' if more else ''})",
            "",
            *case_table([_diff(c) for c in worst], a="incumbent", b="candidate"),
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def _diff(change: CaseChange) -> CaseDiff:
    return CaseDiff(
        case_id=change.case_id,
        kind="regressed",
        input=change.input,
        expected=change.expected,
        baseline_output=change.output_a,
        winner_output=change.output_b,
        baseline_score=change.score_a,
        winner_score=change.score_b,
    )


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
