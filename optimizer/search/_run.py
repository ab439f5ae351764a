"""`optimize run` as a sequence of typed steps: plan, prepare (record, space, study), search loop, verdict,
promotion. Durable: a killed run started again continues where it was."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from optuna.trial import TrialState

from promptopt.data import Dataset
from promptopt.engine import BudgetUse, Services
from promptopt.errors import EvalFailed
from promptopt.finetune import LoraTrainer
from promptopt.search._events import OnEvent, PromotionDecided, RunStarted, ignore
from promptopt.search._evolve import EvolvePlan
from promptopt.search._executor import LocalExecutor, TrialExecutor
from promptopt.search._loop import count_trials, search_loop
from promptopt.search._plan import RunOptions, plan_run
from promptopt.search._prepare import begin_run, open_run_study, queue_start, run_space
from promptopt.search._promote import promote_winner
from promptopt.search._results import InstructionPool, RunResult
from promptopt.search._study import resolve_sampler
from promptopt.search._trial import TrialContext
from promptopt.search._verdict import TestEvals, give_verdict
from promptopt.search_spaces import FineTuneDimension, SearchSpace
from promptopt.spec import LoadedSpec
from promptopt.store import Store


@dataclass
class SearchRun:
    """One optimization run on ``services``, whose ``records`` must be a :class:`~promptopt.store.Store`: the run,
    its study and its experiments live in one database. ``executor_factory(services)`` makes the trial
    executor (default: in-process); ``trainer`` trains its LoRA fine-tunes (default: a thread of this process;
    ``promptopt.workers.ray_lora_trainer`` on Ray)."""

    loaded: LoadedSpec
    dataset: Dataset
    options: RunOptions
    services: Services
    executor_factory: Callable[[Services], TrialExecutor] = LocalExecutor
    on_event: OnEvent = field(default=ignore)
    trainer: LoraTrainer | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.services.records, Store):
            raise TypeError("a search run records into a promptopt.store.Store (services.records)")
        self.store: Store = self.services.records
        self.services = self.services.but(settings=self.loaded.spec.eval)
        sampler, start = resolve_sampler(
            self.options.sampler,
            self.options.start,
            calibrated="calibrated" in self.loaded.spec.search.constrained,
            objectives=len(self.options.objectives),
        )
        self.options = self.options.model_copy(update={"sampler": sampler, "start": start})
        # The confirmation slice leaves train before anything (pre-pass, demos, proposals) can see it.
        self.dataset = self.dataset.carve_confirmation(self.loaded.spec.search.confirm.cases, seed=self.options.seed)
        self.plan = plan_run(self.loaded, self.dataset, self.options, self.services.backend)

    async def run(self, *, resume_id: str | None = None) -> RunResult:
        t0, o, store = time.monotonic(), self.options, self.store
        run = begin_run(store, self.loaded, self.dataset, o, resume_id=resume_id)
        self.on_event(RunStarted(run.id, run.resumed))
        budget = self.plan.search_budget(_spent(store, run.id))  # what a resumed run paid before counts
        space = await run_space(
            store,
            run,
            self.loaded,
            self.dataset,
            self.services.but(budget=budget),
            seed=o.seed,
            on_event=self.on_event,
            factors=o.sampler == "evolve",
            trainer=self.trainer,
        )
        self._check_training_left_time(store, run.id, space, time.monotonic() - t0)
        study = open_run_study(store, run.id, space, o)
        queue_start(study, space, o, on_event=self.on_event)
        ctx = TrialContext(
            loaded=self.loaded, dataset=self.dataset, space=space.to_json(), run_id=run.id, objectives=o.objectives
        )
        executor = self.executor_factory(self.services.but(budget=budget))
        plan = None
        if o.sampler == "evolve":
            plan = EvolvePlan(
                self.loaded,
                self.dataset,
                self.services.but(budget=budget),
                store,
                space,
                run_id=run.id,
                seed=o.seed,
                on_event=self.on_event,
            )
        try:
            stopped_by = await search_loop(
                study,
                space,
                ctx,
                executor,
                max_trials=self.plan.max_trials,
                parallel=o.parallel,
                budget=budget,
                on_event=self.on_event,
                plan=plan,
            )
        finally:
            executor.close()
        space = plan.space if plan is not None else space
        tests = TestEvals(
            self.loaded,
            self.dataset,
            self.services.but(budget=self.plan.verdict_budget(_spent(store, run.id))),
            run_id=run.id,
        )
        verdict = await give_verdict(
            study,
            space,
            tests.verdict,
            confirm=tests.confirm if self.dataset.confirm.cases else None,
            shortlist=self.loaded.spec.search.confirm.shortlist,
            has_test=bool(self.dataset.test.cases),
            top_k=o.top_k,
            multi_objective=len(o.objectives) > 1,
            seed=o.seed,
            on_event=self.on_event,
        )
        promotion = None
        if self.plan.promoting:
            promotion = await promote_winner(
                store,
                self.loaded,
                self.dataset,
                run_id=run.id,
                space=space,
                verdict=verdict,
                options=o,
                incumbent_eval=tests.incumbent,
            )
            self.on_event(PromotionDecided(promotion))
        calls, usd = store.run_usage(run.id)
        result = verdict.result(
            run_id=run.id,
            stopped_by=stopped_by,
            trials=count_trials(study),
            failed_trials=count_trials(study, (TrialState.FAIL,)),
            model_calls=calls,
            cost_usd=usd,
            wall_s=time.monotonic() - t0,
            promotion=promotion,
        )
        result = result.model_copy(update={"instructions": InstructionPool.of_space(space)})
        store.finish_run(run.id, status="finished", result=result.model_dump(mode="json"))
        return result

    def _check_training_left_time(self, store: Store, run_id: str, space: SearchSpace, elapsed_s: float) -> None:
        """Fail the run, saying why, when training its fine-tunes used up ``budget.wall_s``: no trial could run
        (the search would stop at once and the verdict would only say that no trial completed)."""
        limit, fine_tunes = self.plan.max_wall_s, space.find(FineTuneDimension)
        trained = fine_tunes.training_s() if fine_tunes else 0.0
        if limit is None or not trained or elapsed_s < limit:
            return
        message = (
            f"{self.loaded.path}: budget.wall_s ({limit:g} s) ran out while the fine-tune jobs trained "
            f"({trained:.0f} s of training, {elapsed_s:.0f} s in all): no trial could run. Raise budget.wall_s "
            "(or --max-wall-s) above the training time (`optimize run --dry-run` estimates it), or run again: "
            "the trained adapters are kept and found again by their hash"
        )
        store.finish_run(run_id, status="failed", error_message=message)
        raise EvalFailed(message)


def _spent(store: Store, run_id: str) -> BudgetUse:
    calls, usd = store.run_usage(run_id)
    return BudgetUse(model_calls=calls, usd=usd)
