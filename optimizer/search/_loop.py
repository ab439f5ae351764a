"""The search loop: ask a batch of trials, evaluate the new configurations on an executor, tell the study in
trial order (deterministic for a seed), until a limit says stop."""

from __future__ import annotations

from typing import Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from promptopt.engine import Budget
from promptopt.errors import BudgetExceeded
from promptopt.search._events import OnEvent, StopReason, TrialFinished
from promptopt.search._executor import TrialExecutor
from promptopt.search._study import CALIBRATION_ATTR, INTERRUPTED, ExhaustiveGridSampler
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome, TrialStatus
from promptopt.search_spaces import SearchSpace

COPIED_ATTRS = ("experiment_id", "summary", "node", CALIBRATION_ATTR)  # what a duplicate takes over from its twin


class BatchPlan(Protocol):
    """Plans trials before each batch (queues them in the study) and may grow the space; the ``evolve``
    search's :class:`~promptopt.search._evolve.EvolvePlan` is one."""

    async def before_batch(self, study: optuna.Study, size: int) -> SearchSpace: ...


def count_trials(study: optuna.Study, states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.FAIL)) -> int:
    """Finished trials, leaving out those interrupted by a crash (they are retried, not counted twice)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if t.user_attrs.get("error") != INTERRUPTED)


async def search_loop(
    study: optuna.Study,
    space: SearchSpace,
    ctx: TrialContext,
    executor: TrialExecutor,
    *,
    max_trials: int,
    parallel: int,
    budget: Budget,
    on_event: OnEvent,
    plan: BatchPlan | None = None,
) -> StopReason:
    """Run trials in batches of ``parallel`` until ``max_trials`` are finished, the budget runs out, or the
    grid is used up. A configuration already evaluated (same content hash) is told its twin's values
    without an eval; one repeated inside a batch is told after its twin. ``plan`` queues each batch's
    trials and may grow the space (the batch then runs in the grown one)."""
    seen: dict[str, FrozenTrial] = {
        t.user_attrs["config_hash"]: t
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if "config_hash" in t.user_attrs
    }
    while True:
        size = _next_batch_size(study, max_trials, parallel, budget)
        if isinstance(size, StopReason):
            return size
        if plan is not None:
            grown = await plan.before_batch(study, size)
            if grown is not space:
                space, ctx = grown, ctx.model_copy(update={"space": grown.to_json()})
        batch = [study.ask(space.distributions()) for _ in range(size)]
        jobs, twins = _jobs(batch, space, seen)
        outcomes = {o.number: o for o in await executor.run_batch(ctx, jobs)} if jobs else {}
        stop = None
        for trial in batch:
            if trial.number in twins:
                _tell_duplicate(study, trial, twins[trial.number] or seen.get(trial.user_attrs["config_hash"]))
            elif _tell(study, trial, outcomes[trial.number], seen, ctx.objectives, on_event):
                stop = StopReason.BUDGET
        if stop:
            return stop


def _next_batch_size(study: optuna.Study, max_trials: int, parallel: int, budget: Budget) -> int | StopReason:
    done = count_trials(study)
    if done >= max_trials:
        return StopReason.TRIALS
    try:
        budget.reserve(0, 0.0)  # wall-time check before a new batch
    except BudgetExceeded:
        return StopReason.WALL_TIME
    size = min(parallel, max_trials - done)
    if isinstance(study.sampler, ExhaustiveGridSampler):
        size = min(size, study.sampler.unvisited(study))
        if size == 0:
            return StopReason.GRID_EXHAUSTED
    return size


def _jobs(
    batch: list[optuna.Trial], space: SearchSpace, seen: dict[str, FrozenTrial]
) -> tuple[list[TrialJob], dict[int, FrozenTrial | None]]:
    """The jobs to evaluate, and the trials that repeat a configuration: trial number -> its evaluated twin
    (``None``: the twin is in this batch)."""
    jobs, twins, first_in_batch = [], {}, set()
    for trial in batch:
        h = space.config(trial.params).hash
        trial.set_user_attr("config_hash", h)
        if h in seen or h in first_in_batch:
            twins[trial.number] = seen.get(h)
        else:
            first_in_batch.add(h)
            jobs.append(TrialJob(number=trial.number, params=trial.params))
    return jobs, twins


def _tell_duplicate(study: optuna.Study, trial: optuna.Trial, twin: FrozenTrial | None) -> None:
    if twin is None:  # its twin in this batch failed: so does this one, without a second try
        study.tell(trial, state=TrialState.FAIL)
        return
    for k in COPIED_ATTRS:
        if k in twin.user_attrs:
            trial.set_user_attr(k, twin.user_attrs[k])
    trial.set_user_attr("duplicate_of", twin.number)
    study.tell(trial, twin.values)


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    outcome: TrialOutcome,
    seen: dict[str, FrozenTrial],
    objectives: tuple[str, ...],
    on_event: OnEvent,
) -> bool:
    """Tell ``outcome``; returns whether the budget stopped the trial."""
    if outcome.experiment_id:
        trial.set_user_attr("experiment_id", outcome.experiment_id)
    if outcome.node:
        trial.set_user_attr("node", outcome.node)
    if outcome.state is TrialStatus.COMPLETE and outcome.summary is not None:
        trial.set_user_attr("summary", outcome.summary.model_dump(mode="json"))
        if outcome.calibration is not None:
            trial.set_user_attr(CALIBRATION_ATTR, outcome.calibration)
        values = outcome.values(objectives)
        study.tell(trial, values if len(values) > 1 else values[0])
        seen[outcome.config_hash] = study.get_trials(deepcopy=False)[trial.number]
        on_event(TrialFinished(trial.number, outcome.state, score=values[0], node=outcome.node))
        return False
    trial.set_user_attr("error", outcome.error or outcome.state.value)
    study.tell(trial, state=TrialState.FAIL)
    on_event(TrialFinished(trial.number, outcome.state, error=outcome.error, node=outcome.node))
    return outcome.state is TrialStatus.BUDGET
