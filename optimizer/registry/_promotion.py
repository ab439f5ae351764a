"""Gated promotion: a candidate takes a label only if it beats the version holding it, measured again now on
the same test cases, by more than a margin and significantly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from promptopt.config import TaskConfig
from promptopt.engine import EvalResult
from promptopt.errors import InputError, NotFound
from promptopt.names import DEFAULT_LABEL
from promptopt.registry._registry import LabelConflict, Registry
from promptopt.registry._values import Evidence, Lineage, PromotionDecision, PromptVersion
from promptopt.stats import format_p, paired_bootstrap_ci, paired_permutation_p

Evaluate = Callable[[TaskConfig], Awaitable[EvalResult]]


def paired_evidence(
    reference: EvalResult, candidate: EvalResult, *, margin: float, alpha: float, seed: int = 0
) -> Evidence:
    """TaskConfig minus reference on the cases both scored: mean, 95% bootstrap interval, two-sided paired
    permutation p (the same statistics as ``optimize compare`` and a run's verdict)."""
    if (reference.split, reference.dataset_hash) != (candidate.split, candidate.dataset_hash):
        raise ValueError(
            f"evaluate() must score every config on the same split: got {reference.split!r} "
            f"({reference.dataset_hash[:12]}) and {candidate.split!r} ({candidate.dataset_hash[:12]})"
        )
    a, b = reference.objective_by_case(), candidate.objective_by_case()
    common = [case for case in a if case in b]
    if not common:
        raise ValueError("the two evals share no scored case")
    xs, ys = [a[c] for c in common], [b[c] for c in common]
    return Evidence(
        lift=(sum(ys) - sum(xs)) / len(common),
        ci95=paired_bootstrap_ci(xs, ys, seed=seed),
        p_value=paired_permutation_p(xs, ys, seed=seed),
        paired_cases=len(common),
        margin=margin,
        alpha=alpha,
    )


def _verdict(evidence: Evidence, against: str) -> tuple[bool, str]:
    lo, hi = evidence.ci95
    numbers = (
        f"lift {evidence.lift:+.4f} over {against} (95% CI {lo:+.4f}..{hi:+.4f}, {format_p(evidence.p_value)}, "
        f"{evidence.paired_cases} paired cases)"
    )
    if evidence.lift <= evidence.margin:
        return False, f"{numbers} is not above the margin {evidence.margin:+.4f}"
    if evidence.p_value >= evidence.alpha:
        return False, f"{numbers} is not significant (p >= alpha {evidence.alpha:g})"
    return True, f"{numbers} beats the margin {evidence.margin:+.4f} at alpha {evidence.alpha:g}"


async def promote_if_better(
    registry: Registry,
    name: str,
    candidate_config: TaskConfig,
    *,
    evaluate: Evaluate,
    who: str,
    lineage: Lineage = Lineage(),
    margin: float = 0.0,
    alpha: float = 0.05,
    label: str = DEFAULT_LABEL,
    baseline_config: TaskConfig | None = None,
    why: str | None = None,
    seed: int = 0,
) -> PromotionDecision:
    """Register ``candidate_config`` (idempotent; one prompt or a code task's whole bundle) and move ``label``
    to it only if it is better.

    The version holding ``label`` (the incumbent) is evaluated again with ``evaluate``, never compared on
    stale numbers; ``evaluate`` must score every config on the same test split. The candidate is promoted
    when mean(candidate - incumbent) > ``margin`` and the paired permutation p < ``alpha``. When no version
    holds ``label`` yet, ``baseline_config`` (e.g. the spec's prompt as written) plays the incumbent. Either
    way the decision is written to the audit log, so ``Registry.history`` shows why a label did not move.

    Example:
        >>> decision = await promote_if_better(
        ...     registry, "support-triage", best.config, evaluate=on_test, who="ci", margin=0.01, alpha=0.05
        ... )  # doctest: +SKIP

    Raises:
        InputError: no version holds ``label`` and no ``baseline_config`` was given.
        ValueError: ``evaluate`` scored the configs on different splits or on no common case.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha is a significance level in (0, 1], not {alpha}")
    candidate, _ = registry.register(name, candidate_config, lineage=lineage, created_by=who)
    incumbent = _holder(registry, name, label)
    if incumbent is not None and incumbent.version == candidate.version:
        return _refuse(
            registry, candidate, incumbent, label, who, why, f"v{candidate.version} already holds {label!r}", None
        )
    if incumbent is None and baseline_config is None:
        raise InputError(
            "promote_if_better",
            "baseline_config",
            f"no version of {name!r} holds {label!r} yet; pass the baseline config to compare the candidate with",
        )
    against = "the baseline" if incumbent is None else f"v{incumbent.version}"
    reference = await evaluate(baseline_config if incumbent is None else incumbent.config)  # type: ignore[arg-type]
    challenger = await evaluate(candidate.config)
    failed = [
        who_
        for who_, result in ((against, reference), (f"v{candidate.version}", challenger))
        if result.status != "finished"
    ]
    if failed:
        return _refuse(
            registry,
            candidate,
            incumbent,
            label,
            who,
            why,
            f"the eval of {' and '.join(failed)} failed; a failed eval is no evidence",
            None,
        )
    evidence = paired_evidence(reference, challenger, margin=margin, alpha=alpha, seed=seed)
    better, reason = _verdict(evidence, against)
    if not better:
        return _refuse(registry, candidate, incumbent, label, who, why, reason, evidence)
    try:
        registry.record_promotion(
            name,
            label,
            candidate.version,
            who=who,
            why=_why(reason, why),
            expect=None if incumbent is None else incumbent.version,
            evidence=evidence,
        )
    except LabelConflict as conflict:
        return _refuse(
            registry,
            candidate,
            _holder(registry, name, label),
            label,
            who,
            why,
            f"{conflict}; run the gate again against the new holder",
            evidence,
        )
    return _decision(candidate, incumbent, label, True, reason, evidence)


def _holder(registry: Registry, name: str, label: str) -> PromptVersion | None:
    try:
        return registry.get(name, label=label)
    except NotFound:
        return None


def _why(reason: str, why: str | None) -> str:
    return reason if not why else f"{why} ({reason})"


def _refuse(
    registry: Registry,
    candidate: PromptVersion,
    incumbent: PromptVersion | None,
    label: str,
    who: str,
    why: str | None,
    reason: str,
    evidence: Evidence | None,
) -> PromotionDecision:
    registry.record_refusal(candidate.name, label, candidate.version, who=who, why=_why(reason, why), evidence=evidence)
    return _decision(candidate, incumbent, label, False, reason, evidence)


def _decision(
    candidate: PromptVersion,
    incumbent: PromptVersion | None,
    label: str,
    promoted: bool,
    reason: str,
    evidence: Evidence | None,
) -> PromotionDecision:
    return PromotionDecision(
        version=candidate.version,
        promoted=promoted,
        label=label,
        reason=reason,
        lift=None if evidence is None else evidence.lift,
        ci95=None if evidence is None else evidence.ci95,
        p_value=None if evidence is None else evidence.p_value,
        incumbent_version=None if incumbent is None else incumbent.version,
    )
