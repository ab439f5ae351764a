"""The held-out verdict: baseline and best candidates on the test split, which the search never saw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict

from promptopt.config import TaskConfig
from promptopt.data import Dataset
from promptopt.engine import EvalResult, EvalSummary, ExperimentRole, Origin, Services, evaluate_config
from promptopt.errors import EvalFailed
from promptopt.registry import PromotionDecision, paired_evidence
from promptopt.search._events import OnEvent, StopReason, TestEvalStarted
from promptopt.search._results import Candidate, RunResult
from promptopt.search._study import trial_config
from promptopt.search_spaces import SearchSpace
from promptopt.spec import LoadedSpec


class Lift(BaseModel):
    """Winner minus baseline on the test cases both scored."""

    model_config = ConfigDict(frozen=True)
    lift: float
    ci95: tuple[float, float]
    p_value: float
    paired_cases: int


def paired_lift(baseline: EvalResult, winner: EvalResult, *, seed: int = 0) -> Lift:
    """The winner's mean gain over the baseline on the cases both scored, with a paired bootstrap 95% interval
    and a paired permutation p-value (both seeded): the promotion gate's statistics (``paired_evidence``)."""
    e = paired_evidence(baseline, winner, margin=0.0, alpha=1.0, seed=seed)
    return Lift(lift=e.lift, ci95=e.ci95, p_value=e.p_value, paired_cases=e.paired_cases)


class Verdict(BaseModel):
    """The search's outcome on held-out data: the baseline, the winner (best by validation), their lift on
    the test split (``None`` without test cases), the leaderboard and, with several objectives, the front."""

    model_config = ConfigDict(frozen=True)
    baseline: Candidate
    best: Candidate
    lift: Lift | None
    leaderboard: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...] = ()

    def result(
        self,
        *,
        run_id: str,
        stopped_by: StopReason,
        trials: int,
        failed_trials: int,
        model_calls: int,
        cost_usd: float,
        wall_s: float,
        promotion: PromotionDecision | None,
    ) -> RunResult:
        """The run's result: this verdict with the run's figures."""
        lift = self.lift
        return RunResult(
            run_id=run_id,
            status="finished",
            stopped_by=stopped_by,
            trials=trials,
            failed_trials=failed_trials,
            model_calls=model_calls,
            cost_usd=cost_usd,
            wall_s=wall_s,
            baseline=self.baseline,
            best=self.best,
            lift=lift.lift if lift else None,
            lift_ci95=lift.ci95 if lift else None,
            p_value=lift.p_value if lift else None,
            leaderboard=self.leaderboard,
            pareto=self.pareto,
            promotion=promotion,
        )


TestEval = Callable[[TaskConfig, int], Awaitable[EvalResult]]  # (config, trial number) -> its test eval


@dataclass(frozen=True)
class TestEvals:
    """Evals on the test split for a run, recorded with their role: a shortlisted trial's (``verdict``) or one
    the promotion gate asks for (``incumbent``). ``services`` carries the verdict's budget."""

    loaded: LoadedSpec
    dataset: Dataset
    services: Services
    run_id: str

    async def verdict(self, config: TaskConfig, trial: int) -> EvalResult:
        return await self._eval(config, "test", Origin(run_id=self.run_id, role=ExperimentRole.VERDICT, trial=trial))

    async def confirm(self, config: TaskConfig, trial: int) -> EvalResult:
        return await self._eval(config, "confirm", Origin(run_id=self.run_id, role=ExperimentRole.CONFIRM, trial=trial))

    async def incumbent(self, config: TaskConfig) -> EvalResult:
        return await self._eval(config, "test", Origin(run_id=self.run_id, role=ExperimentRole.INCUMBENT))

    async def _eval(self, config: TaskConfig, split: str, origin: Origin) -> EvalResult:
        return await evaluate_config(
            self.loaded, self.dataset, config, split=split, services=self.services, origin=origin
        )


async def _confirmed(
    ranked: list[FrozenTrial], cands: dict[int, Candidate], space: SearchSpace, confirm: TestEval, shortlist: int
) -> list[FrozenTrial]:
    """``ranked`` with its first ``shortlist`` trials re-ranked by validation and confirmation rows pooled
    (``cands`` gain their confirmation score); the rest keep their validation order."""
    pooled: dict[int, float] = {}
    for t in ranked[:shortlist]:
        result = await confirm(trial_config(space, t), t.number)
        cands[t.number] = cands[t.number].model_copy(update={"confirmation_score": result.summary.objective})
        validation = EvalSummary.model_validate(t.user_attrs["summary"])
        pooled[t.number] = _pooled_mean(validation, result.summary)
    head = sorted(ranked[:shortlist], key=lambda t: (-pooled[t.number], t.number))
    return head + ranked[shortlist:]


def _pooled_mean(*summaries: EvalSummary) -> float:
    """The objective's mean over the scored rows of several evals of one configuration (-inf: none scored)."""
    scored = [(s.objective, s.rows - s.errors) for s in summaries if s.objective is not None]
    n = sum(count for _, count in scored)
    return sum(mean * count for mean, count in scored) / n if n else float("-inf")


async def give_verdict(
    study: optuna.Study,
    space: SearchSpace,
    test_eval: TestEval,
    *,
    confirm: TestEval | None = None,
    shortlist: int = 3,
    has_test: bool,
    top_k: int,
    multi_objective: bool,
    seed: int,
    on_event: OnEvent,
) -> Verdict:
    """Evaluate the baseline and the ``top_k`` best distinct configurations with ``test_eval``, and the
    winner's paired lift over the baseline there.

    The best are by validation score; with ``confirm`` (an eval on the confirmation slice), the ``shortlist``
    best by validation are scored there too and ranked first, by their mean over validation and confirmation
    rows together, so that the winner is chosen on more rows than the search compared.

    Raises:
        EvalFailed: no trial completed, or the baseline (the spec as written) did not.
    """
    complete = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if "duplicate_of" not in t.user_attrs]
    if not complete:
        raise EvalFailed("no trial completed; see the trial errors with `optimize report`")
    ranked = sorted(complete, key=lambda t: (-t.values[0], t.number))
    base_hash = space.config(space.baseline()).hash
    baseline = next((t for t in complete if t.user_attrs.get("config_hash") == base_hash), None)
    if baseline is None:
        raise EvalFailed("the baseline trial (the spec as written) did not complete, so there is no verdict")
    cands = {t.number: Candidate.of_trial(t, trial_config(space, t)) for t in ranked}
    if confirm is not None:
        ranked = await _confirmed(ranked, cands, space, confirm, shortlist)
    tested: dict[int, EvalResult] = {}
    if has_test:
        for t in [baseline] + [t for t in ranked if t.number != baseline.number][: max(1, top_k)]:
            on_event(TestEvalStarted(t.number))
            tested[t.number] = result = await test_eval(trial_config(space, t), t.number)
            cands[t.number] = cands[t.number].model_copy(
                update={"test_score": result.summary.objective, "test_experiment_id": result.experiment_id}
            )
    best = cands[ranked[0].number]
    lift = None
    if best.trial in tested and baseline.number in tested:
        lift = paired_lift(tested[baseline.number], tested[best.trial], seed=seed)
    pareto = tuple(cands[t.number] for t in study.best_trials if t.number in cands) if multi_objective else ()
    return Verdict(
        baseline=cands[baseline.number],
        best=best,
        lift=lift,
        leaderboard=tuple(cands[t.number] for t in ranked),
        pareto=pareto,
    )
