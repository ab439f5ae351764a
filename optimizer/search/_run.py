"""`optimize run`: build the space, run the Optuna study in batches of parallel trials within the budget,
then give the held-out verdict on the test split. Durable: a killed run started again continues."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict

from promptopt.api import evaluate_config
from promptopt.cache import ResponseCache
from promptopt.config import PromptConfig
from promptopt.data import Dataset, content_hash
from promptopt.engine import BudgetUse, EvalResult, Evaluator, LocalBudget, paying
from promptopt.errors import BudgetExceeded, EvalFailed, InputError
from promptopt.models import ModelBackend
from promptopt.search._build import assemble_space, needs_prepass, prepass, propose_instructions
from promptopt.search._executor import LocalExecutor, TrialExecutor
from promptopt.search._study import (
    INTERRUPTED,
    ExhaustiveGridSampler,
    make_sampler,
    open_study,
    recover_interrupted,
)
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome
from promptopt.search._verdict import paired_lift
from promptopt.search_spaces import SearchSpace
from promptopt.spec import LoadedSpec

OBJECTIVES = {"score": "maximize", "cost": "minimize", "latency": "minimize"}
VERDICT_TRIAL_OFFSET = 100_000  # test-split experiments of trial n are recorded as trial n + offset


class RunOptions(BaseModel):
    model_config = ConfigDict(frozen=True)
    sampler: str = "tpe"
    seed: int = 0
    # "designed": after the baseline, the spec's instruction with the most examples (and a constrained output
    # where searched) is tried before the sampler's own start-up trials (see SearchSpace.design).
    start: Literal["baseline", "designed"] = "baseline"
    parallel: int = 1
    objectives: tuple[str, ...] = ("score",)
    top_k: int = 2
    max_trials: int | None = None
    max_calls: int | None = None
    max_usd: float | None = None
    max_wall_s: float | None = None
    promote: bool = True
    who: str = "optimize run"


class Candidate(BaseModel):
    """A distinct configuration that completed, with the figures of its validation eval.

    ``cost_usd``, ``mean_latency_s`` and ``model_calls`` are what that eval paid (a cached response is free and
    instant: all 0 / ``None`` on a warm cache). ``cost_per_row_usd`` and ``latency_per_row_s`` are what the
    configuration's task call costs and takes per row when it really runs, cached or not: the figures the cost
    and latency objectives use (``None`` when unknown, e.g. in results recorded before they existed).
    """

    model_config = ConfigDict(frozen=True)
    trial: int
    config: dict[str, Any]
    description: str
    validation_score: float | None
    test_score: float | None = None
    cost_usd: float = 0.0
    mean_latency_s: float | None = None
    model_calls: int = 0
    cost_per_row_usd: float | None = None
    latency_per_row_s: float | None = None
    experiment_id: str | None = None
    test_experiment_id: str | None = None
    node: str | None = None

    @classmethod
    def of_trial(cls, trial: optuna.trial.FrozenTrial, config: PromptConfig | None) -> Candidate:
        """The candidate of a completed trial (``config``: its configuration, ``None`` when unknown), with the
        figures of the eval summary the trial recorded."""
        s = trial.user_attrs.get("summary") or {}
        return cls(trial=trial.number, config={} if config is None else config.model_dump(mode="json", by_alias=True),
                   description="" if config is None else config.describe(),
                   validation_score=trial.values[0] if trial.values else None, cost_usd=s.get("cost_usd", 0.0),
                   mean_latency_s=s.get("mean_latency_s"), model_calls=s.get("model_calls", 0),
                   cost_per_row_usd=s.get("cost_per_row_usd"), latency_per_row_s=s.get("latency_per_row_s"),
                   experiment_id=trial.user_attrs.get("experiment_id"), node=trial.user_attrs.get("node"))


class RunResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    run_id: str
    status: str
    stopped_by: str | None
    trials: int
    failed_trials: int
    model_calls: int
    cost_usd: float
    wall_s: float
    baseline: Candidate
    best: Candidate
    lift: float | None
    lift_ci95: tuple[float, float] | None
    p_value: float | None
    leaderboard: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...] = ()
    promotion: dict[str, Any] | None = None


def count_trials(study: optuna.Study, states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.FAIL)) -> int:
    """Finished trials, leaving out those interrupted by a crash (they are retried, not counted twice)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=states)
               if t.user_attrs.get("error") != INTERRUPTED)


def run_key(loaded: LoadedSpec, dataset: Dataset, options: RunOptions) -> str:
    """Same spec, data and search settings -> same run (so the same command resumes it)."""
    return content_hash({"spec": loaded.spec.model_dump(mode="json", by_alias=True), "data": dataset.hash,
                         "sampler": options.sampler, "seed": options.seed, "objectives": options.objectives})


@dataclass
class SearchRun:
    """One optimization run. Dependencies are passed in; the study and records live in ``store``."""

    loaded: LoadedSpec
    dataset: Dataset
    options: RunOptions
    backend: ModelBackend
    cache: ResponseCache
    store: Any
    executor_factory: Callable[..., TrialExecutor] | None = None
    on_event: Callable[[str, dict[str, Any]], None] = field(default=lambda kind, data: None)

    def __post_init__(self) -> None:
        b, o = self.loaded.spec.budget, self.options
        self.max_trials = o.max_trials or b.trials
        self.max_calls = o.max_calls or b.model_calls
        self.max_usd = o.max_usd if o.max_usd is not None else b.usd
        self.max_wall = o.max_wall_s or b.wall_s
        # The held-out verdict is paid from the same budget: the search leaves room for it.
        # baseline + top-k, plus the incumbent production version that promotion evaluates again
        evals = 1 + max(1, o.top_k) + (1 if self._promoting else 0)
        self.verdict_calls = evals * len(self.dataset.test) * self.loaded.spec.eval.repeats
        if self.max_calls is not None and self.max_calls <= self.verdict_calls:
            raise InputError(str(self.loaded.path), "budget.model_calls",
                             f"{self.max_calls} calls leave nothing for the search: the held-out verdict alone "
                             f"needs up to {self.verdict_calls} (baseline + top_k={o.top_k} on "
                             f"{len(self.dataset.test)} test rows); raise it or lower --top-k")
        self.budget = self._search_budget(BudgetUse())

    @property
    def _promoting(self) -> bool:
        return self.options.promote and self.loaded.spec.registry.promote and bool(self.dataset.test.cases)

    def _search_budget(self, start: BudgetUse) -> LocalBudget:
        per_call = self._per_call_usd()
        return LocalBudget(
            model_calls=None if self.max_calls is None else self.max_calls - self.verdict_calls,
            usd=None if self.max_usd is None else max(0.0, self.max_usd - self.verdict_calls * per_call),
            wall_s=self.max_wall, start=start)

    def _per_call_usd(self) -> float:
        if self.max_usd is None or not self.dataset.test.cases:
            return 0.0
        from promptopt.search._estimate import estimate_run

        est = estimate_run(self.loaded, self.dataset, trials=1, top_k=0, backend=self.backend)
        return max(est["cost_per_call_usd"].values())

    # -- set-up -----------------------------------------------------------------------------------------
    def _evaluator(self) -> Evaluator:
        return Evaluator(backend=self.backend, cache=self.cache, store=self.store,
                         settings=self.loaded.spec.eval, budget=self.budget)

    async def _space(self, run_id: str, saved: dict[str, Any] | None) -> SearchSpace:
        if saved:
            return SearchSpace.from_json(saved)
        from promptopt.scorers import build_scorers

        evaluator = self._evaluator()
        scorers = build_scorers(self.loaded.spec.scorers, base_dir=self.loaded.base_dir,
                                backend=evaluator.as_backend(), source=str(self.loaded.path))
        try:
            from promptopt.search._build import PrePass

            pre = PrePass((), ())
            if needs_prepass(self.loaded):
                self.on_event("prepass", {})
                pre = await prepass(self.loaded, self.dataset, evaluator, scorers, run_id=run_id,
                                    seed=self.options.seed)
            with paying() as spent:  # outside any eval: the run keeps the count with its space
                proposals = await propose_instructions(self.loaded, self.dataset, evaluator, pre,
                                                       seed=self.options.seed)
        finally:
            await asyncio.gather(*(s.aclose() for s in scorers))
        space = assemble_space(self.loaded, self.dataset, pre, proposals, seed=self.options.seed)
        self.store.save_run_space(run_id, space.to_json(), calls=spent.calls, usd=spent.usd)
        self.on_event("space", {"dimensions": [d.kind for d in space.dimensions], "proposals": proposals})
        return space

    # -- the search loop --------------------------------------------------------------------------------
    async def _search(self, study: optuna.Study, space: SearchSpace, ctx: TrialContext,
                      executor: TrialExecutor) -> str | None:
        dists = space.distributions()
        seen: dict[str, optuna.trial.FrozenTrial] = {
            t.user_attrs["config_hash"]: t for t in study.get_trials(states=(TrialState.COMPLETE,))
            if "config_hash" in t.user_attrs}
        while True:
            done = count_trials(study)
            if done >= self.max_trials:
                return "trials"
            try:
                self.budget.reserve(0, 0.0)  # wall-time check before a new batch
            except BudgetExceeded:
                return "wall_s"
            size = min(self.options.parallel, self.max_trials - done)
            if isinstance(study.sampler, ExhaustiveGridSampler):
                size = min(size, study.sampler.unvisited(study))
                if size == 0:
                    return "grid_exhausted"
            batch = [study.ask(dists) for _ in range(size)]
            jobs, reused, first_in_batch = [], {}, {}
            for trial in batch:
                h = space.config(trial.params).hash
                trial.set_user_attr("config_hash", h)
                if h in seen:
                    reused[trial.number] = seen[h]
                elif h in first_in_batch:
                    reused[trial.number] = None  # told after its twin in this batch
                else:
                    first_in_batch[h] = trial.number
                    jobs.append(TrialJob(number=trial.number, params=trial.params))
            outcomes = {o.number: o for o in await executor.run_batch(ctx, jobs)} if jobs else {}
            stop = None
            for trial in batch:
                if trial.number in reused:
                    twin = reused[trial.number] or seen.get(trial.user_attrs["config_hash"])
                    if twin is None:  # its twin in this batch failed: so does this one, without a second try
                        study.tell(trial, state=TrialState.FAIL)
                        continue
                    for k in ("experiment_id", "summary", "node"):
                        if k in twin.user_attrs:
                            trial.set_user_attr(k, twin.user_attrs[k])
                    trial.set_user_attr("duplicate_of", twin.number)
                    study.tell(trial, twin.values)
                    continue
                stop = self._tell(study, trial, outcomes[trial.number], seen) or stop
            if stop:
                return stop

    def _tell(self, study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome,
              seen: dict[str, Any]) -> str | None:
        if outcome.experiment_id:
            trial.set_user_attr("experiment_id", outcome.experiment_id)
        if outcome.node:
            trial.set_user_attr("node", outcome.node)
        if outcome.state == "complete":
            trial.set_user_attr("summary", outcome.summary.model_dump(mode="json"))  # type: ignore[union-attr]
            values = outcome.values(self.options.objectives)
            study.tell(trial, values if len(values) > 1 else values[0])
            seen[outcome.config_hash] = study.get_trials(deepcopy=False)[trial.number]
            self.on_event("trial", {"number": trial.number, "state": "complete", "score": values[0],
                                    "node": outcome.node})
            return None
        trial.set_user_attr("error", outcome.error or outcome.state)
        study.tell(trial, state=TrialState.FAIL)
        self.on_event("trial", {"number": trial.number, "state": outcome.state, "error": outcome.error})
        return "budget" if outcome.state == "budget" else None

    # -- verdict ----------------------------------------------------------------------------------------
    async def _test(self, run_id: str, config: PromptConfig, number: int, budget: LocalBudget) -> EvalResult:
        return await evaluate_config(self.loaded, self.dataset, config, split="test", backend=self.backend,
                                     cache=self.cache, store=self.store, run_id=run_id, budget=budget,
                                     trial_number=VERDICT_TRIAL_OFFSET + number)

    async def _verdict(self, run_id: str, study: optuna.Study, space: SearchSpace) -> dict[str, Any]:
        complete = [t for t in study.get_trials(states=(TrialState.COMPLETE,))
                    if "duplicate_of" not in t.user_attrs]
        if not complete:
            raise EvalFailed("no trial completed; see the trial errors with `optimize report`")
        ranked = sorted(complete, key=lambda t: (-t.values[0], t.number))
        base_hash = space.config(space.baseline()).hash
        baseline = next((t for t in complete if t.user_attrs.get("config_hash") == base_hash), None)
        if baseline is None:
            raise EvalFailed("the baseline trial (the spec as written) did not complete, so there is no verdict")
        chosen = [baseline] + [t for t in ranked if t.number != baseline.number][: max(1, self.options.top_k)]
        tested: dict[int, EvalResult] = {}
        calls, usd = self.store.run_usage(run_id)
        budget = self.verdict_budget = LocalBudget(model_calls=self.max_calls, usd=self.max_usd,
                                                   start=BudgetUse(model_calls=calls, usd=usd))
        if self.dataset.test.cases:
            for t in chosen:
                self.on_event("test", {"trial": t.number})
                tested[t.number] = await self._test(run_id, space.config(t.params), t.number, budget)
        cands = {t.number: Candidate.of_trial(t, space.config(t.params)) for t in ranked}
        for n, res in tested.items():
            cands[n] = cands[n].model_copy(update={"test_score": res.summary.objective,
                                                   "test_experiment_id": res.experiment_id})
        best = cands[ranked[0].number]
        lift = None
        if best.trial in tested and baseline.number in tested:
            lift = paired_lift(tested[baseline.number], tested[best.trial], seed=self.options.seed)
        pareto = ()
        if len(self.options.objectives) > 1:
            pareto = tuple(cands[t.number] for t in study.best_trials if t.number in cands)
        return {"baseline": cands[baseline.number], "best": best, "lift": lift,
                "leaderboard": tuple(cands[t.number] for t in ranked), "pareto": pareto}

    # -- entry point ------------------------------------------------------------------------------------
    async def run(self, *, resume_id: str | None = None) -> RunResult:
        t0 = time.monotonic()
        key = run_key(self.loaded, self.dataset, self.options)
        run = self.store.begin_run(key=key, name=self.loaded.spec.task.name, resume_id=resume_id,
                                   spec=self.loaded.spec.model_dump(mode="json", by_alias=True),
                                   settings=self.options.model_dump(mode="json"), dataset_hash=self.dataset.hash)
        self.on_event("run", {"run_id": run.id, "resumed": run.resumed})
        calls0, usd0 = self.store.run_usage(run.id)
        self.budget = self._search_budget(BudgetUse(model_calls=calls0, usd=usd0))  # paid before a resume
        space = await self._space(run.id, run.space)
        study = open_study(run_id=run.id, store_url=self.store.url, directions=[
            OBJECTIVES[o] for o in self.options.objectives], sampler=make_sampler(
            self.options.sampler, space, self.options.seed, multi_objective=len(self.options.objectives) > 1))
        requeued = recover_interrupted(study)
        if requeued:
            self.on_event("recovered", {"trials": len(requeued)})
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial(space.baseline(), user_attrs={"baseline": True})
            if self.options.start == "designed" and self.options.sampler != "grid":
                for point in space.design():
                    study.enqueue_trial(point, user_attrs={"designed": True})
        ctx = TrialContext(loaded=self.loaded, dataset=self.dataset, space=space.to_json(), run_id=run.id,
                           objectives=self.options.objectives)
        executor = (self.executor_factory or self._local_executor)(budget=self.budget)
        try:
            stopped_by = await self._search(study, space, ctx, executor)
        finally:
            executor.close()
        verdict = await self._verdict(run.id, study, space)
        promotion = await self._promote(run.id, space, verdict) if self._promoting else None
        calls, usd = self.store.run_usage(run.id)
        lift = verdict.pop("lift")
        result = RunResult(
            run_id=run.id, status="finished", stopped_by=stopped_by,
            trials=count_trials(study), failed_trials=count_trials(study, (TrialState.FAIL,)),
            model_calls=calls, cost_usd=usd,
            wall_s=time.monotonic() - t0, lift=lift.lift if lift else None, lift_ci95=lift.ci95 if lift else None,
            p_value=lift.p_value if lift else None, promotion=promotion, **verdict)
        self.store.finish_run(run.id, status="finished", result=result.model_dump(mode="json"))
        return result

    async def _promote(self, run_id: str, space: SearchSpace, verdict: dict[str, Any]) -> dict[str, Any]:
        """Register the winner; move the label only if it beats the incumbent (re-evaluated on the same test
        split) or, for a new prompt, the spec's baseline. Evals of configs already tested are cache hits."""
        from promptopt.registry import Lineage, Registry, promote_if_better

        settings, best = self.loaded.spec.registry, verdict["best"]
        counter = iter(range(2 * VERDICT_TRIAL_OFFSET, 3 * VERDICT_TRIAL_OFFSET))

        async def on_test(config: PromptConfig) -> EvalResult:
            try:
                return await self._test(run_id, config, next(counter) - VERDICT_TRIAL_OFFSET, self.verdict_budget)
            except EvalFailed as exc:  # a failed eval is no evidence: the gate refuses and says why
                return self.store.get_result(exc.experiment_id)  # type: ignore[attr-defined]

        lineage = Lineage(run_id=run_id, trial=best.trial, spec_hash=content_hash(
            self.loaded.spec.model_dump(mode="json", by_alias=True)), dataset_hash=self.dataset.hash,
            validation_score=best.validation_score, test_score=best.test_score)
        decision = await promote_if_better(
            Registry(self.store), self.loaded.spec.task.name, PromptConfig.model_validate(best.config),
            evaluate=on_test, who=self.options.who, lineage=lineage, margin=settings.margin, alpha=settings.alpha,
            label=settings.label, baseline_config=space.config(space.baseline()), seed=self.options.seed)
        self.on_event("promotion", decision.model_dump(mode="json"))
        return decision.model_dump(mode="json")

    def _local_executor(self, *, budget: LocalBudget) -> TrialExecutor:
        return LocalExecutor(backend=self.backend, cache=self.cache, store=self.store, budget=budget,
                             concurrency=self.loaded.spec.eval.concurrency)
