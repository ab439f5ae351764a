"""The ``evolve`` search: a designed start, moves one factor at a time from the best configuration so far,
and instructions that grow during the run.

Why not TPE at these budgets: a run buys 12 to 40 full evals; TPE spends its first 8 on random start-up and
then models a joint draw of every parameter from a handful of noisy scores. This search instead:

1. **starts where a practitioner would**: the baseline, then the designed point (every dimension at its
   :meth:`~promptopt.search_spaces.Dimension.design` value: a label-balanced demo set, constrained output);
2. **moves one factor at a time** from the anchor: each factor at its level of largest effect in an additive
   model of every trial so far (ridge least squares on one-hot levels, so one noisy pair of 30-row evals does
   not flip a factor; the anchor itself is evaluated first when it is new). The factors take turns
   (instruction, demo set, constraint, model ...), each trying its next untried level, in the dimension's
   order, with the anchor's other values;
3. **grows the instruction pool** once every factor had a turn since the last generation: a parent is drawn
   from the per-case
   Pareto front of the trials (GEPA, arXiv 2507.19457: each trial weighted by the validation cases on which
   it is among the best, dominated trials left out), run on a sample of *train* cases (never validation,
   confirmation or test), and its mistakes write children: with no model, ``reflect:definitions`` for a
   label task (each label defined by an input the parent got wrong,
   :func:`~promptopt.search_spaces.reflect_on_definitions`; measured: the ``reflect:cases`` hard-case line
   below scored under its parent on every dataset with the 135M model) and ``reflect:cases`` otherwise (the
   hard cases and their answers in the instruction, :func:`~promptopt.search_spaces.reflect_on_cases`);
   with ``search.instructions.proposer_model``, that model's rewrite, shown the score-sorted trajectory of
   earlier instructions (OPRO) and the mistakes. Each child is checked before any call is spent on it
   (:func:`~promptopt.search_spaces.check_instruction`); a rejected one is kept with its reason. A child is
   tried next, with the anchor's other values (its parent's may be stale by then).

A code task's prompts each have their own growing instruction (``<prompt>.instruction``); generations take
them in turn (round-robin), and a prompt's children are written from its own calls inside the parent's rows
that ended wrong (its variables, its answer, and the answer the row should have ended with).

The growing instruction is an integer parameter over the run's append-only pool, kept with the run's space
(see :class:`~promptopt.search_spaces.InstructionDimension`); the space is saved after each generation, so a
killed run resumes with the same pool. Points the plan cannot name (every neighbour tried) are left to the
study's sampler (random, seeded).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import TrialState

from promptopt.config import PipelineConfig, example_output
from promptopt.data import Case, Dataset, Split
from promptopt.engine import Evaluator, ExperimentRole, Origin, Services, evaluate_config, paying
from promptopt.errors import BudgetExceeded, EvalFailed
from promptopt.models import ModelRequest, ModelResponse
from promptopt.search._events import InstructionsEvolved, OnEvent
from promptopt.search_spaces import (
    InstructionDimension,
    ReflectiveProposer,
    RejectedProposal,
    ScopedDimension,
    SearchSpace,
    check_instruction,
    instruction_param,
    reflect_on_cases,
    reflect_on_definitions,
)
from promptopt.spec import LoadedSpec

if TYPE_CHECKING:
    from promptopt.store import Store

Failure = tuple[dict[str, Any], str, str]  # a case's input, the answer given, the expected answer


@dataclass(frozen=True)
class Scored:
    """A completed trial as the plan sees it."""

    number: int
    params: dict[str, Any]
    score: float
    experiment_id: str | None


def completed(study: optuna.Study) -> list[Scored]:
    """The study's completed trials that evaluated a configuration of their own (duplicates left out)."""
    return [
        Scored(t.number, dict(t.params), float(t.values[0]), t.user_attrs.get("experiment_id"))
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "duplicate_of" not in t.user_attrs
    ]


def incumbent(trials: list[Scored]) -> Scored:
    """The best score so far; a tie keeps the earlier trial (a later equal score is no evidence of better)."""
    return max(trials, key=lambda t: (t.score, -t.number))


RIDGE = 1.0  # shrinks a level seen in one trial halfway to the mean: one noisy score is weak evidence


def main_effects(space: SearchSpace, trials: list[Scored]) -> dict[str, dict[Any, float]]:
    """Each tried level's effect on the score in an additive model of the trials (ridge least squares on
    one-hot levels, scores centred): the evidence of every trial pooled, so that a factor's best level is
    not read off one noisy pair of evals."""
    grid = space.grid()
    columns = [
        (name, v) for name, values in grid.items() for v in values if any(t.params.get(name) == v for t in trials)
    ]
    x = np.array([[float(t.params.get(name) == v) for name, v in columns] for t in trials])
    y = np.array([t.score for t in trials])
    coef = np.linalg.solve(x.T @ x + RIDGE * np.eye(len(columns)), x.T @ (y - y.mean()))
    effects: dict[str, dict[Any, float]] = {name: {} for name in grid}
    for (name, v), c in zip(columns, coef, strict=True):
        effects[name][v] = float(c)
    return effects


def anchor(space: SearchSpace, trials: list[Scored]) -> dict[str, Any]:
    """The configuration the trials point to: each factor at its level of largest effect (a tie, within
    1e-9, keeps the best trial's level)."""
    best = {**space.baseline(), **incumbent(trials).params}
    point = {}
    for name, levels in main_effects(space, trials).items():
        top = max(levels.values(), default=0.0)
        point[name] = best[name] if levels.get(best[name], -1.0) >= top - 1e-9 else max(levels, key=levels.__getitem__)
    return point


def next_points(space: SearchSpace, trials: list[Scored], seen: set[str], n: int) -> list[dict[str, Any]]:
    """Up to ``n`` unseen configurations: the :func:`anchor` if it was not evaluated yet, then the anchor with
    one factor moved to its next untried level; the factors take turns, starting from the one after the last
    move (``len(trials)`` turns so far)."""
    best = anchor(space, trials)
    grid = space.grid()
    tried = {name: {t.params.get(name) for t in trials} for name in grid}
    factors = list(grid)
    points: list[dict[str, Any]] = []
    hashes = set(seen)
    if space.config(best).hash not in hashes and n > 0:
        points.append(best)
        hashes.add(space.config(best).hash)
    turn = len(trials)
    while len(points) < n:
        for offset in range(len(factors)):
            name = factors[(turn + offset) % len(factors)]
            levels = [v for v in grid[name] if v not in tried[name]] + [v for v in grid[name] if v in tried[name]]
            point = _move(space, best, name, levels, hashes)
            if point is not None:
                points.append(point)
                hashes.add(space.config(point).hash)
                turn += offset + 1
                break
        else:
            break
    return points


def _move(
    space: SearchSpace, params: dict[str, Any], name: str, levels: list[Any], seen: set[str]
) -> dict[str, Any] | None:
    for level in levels:
        point = {**space.baseline(), **params, name: level}
        if space.config(point).hash not in seen:
            return point
    return None


def pareto_weights(per_case: dict[int, dict[str, float]]) -> dict[int, int]:
    """GEPA's parent weights: for each trial on the per-case front, the number of cases on which it has the
    best score (ties share), dominated trials left out; cases nobody got any score on do not count.

    Example:
        >>> pareto_weights({0: {"a": 1, "b": 0}, 1: {"a": 0, "b": 1}, 2: {"a": 0, "b": 0}})
        {0: 1, 1: 1}
    """
    cases = {c for scores in per_case.values() for c in scores}
    weights: dict[int, int] = {}
    for case in cases:
        best = max(s.get(case, 0.0) for s in per_case.values())
        if best <= 0:
            continue
        for number, scores in per_case.items():
            if scores.get(case, 0.0) == best:
                weights[number] = weights.get(number, 0) + 1

    def dominated(a: int) -> bool:
        return any(
            all(per_case[b].get(c, 0.0) >= per_case[a].get(c, 0.0) for c in cases)
            and any(per_case[b].get(c, 0.0) > per_case[a].get(c, 0.0) for c in cases)
            for b in weights
            if b != a
        )

    return {n: w for n, w in sorted(weights.items()) if not dominated(n)}


class EvolvePlan:
    """Plans the ``evolve`` search's next trials before each batch and grows the instruction pool; ``space`` is
    the run's space as it is now (the loop evaluates trials in it; the verdict reads it)."""

    def __init__(
        self,
        loaded: LoadedSpec,
        dataset: Dataset,
        services: Services,
        store: Store,
        space: SearchSpace,
        *,
        run_id: str,
        seed: int,
        on_event: OnEvent,
    ) -> None:
        self.loaded, self.dataset, self.services, self.store = loaded, dataset, services, store
        self.space, self.run_id, self.seed, self.on_event = space, run_id, seed, on_event
        self._per_case: dict[str, dict[str, float]] = {}  # experiment id -> objective by case

    async def before_batch(self, study: optuna.Study, size: int) -> SearchSpace:
        """Queue up to ``size`` planned trials (none while queued ones wait), growing the pool first when every
        instruction has been tried; returns the space the batch runs in."""
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return self.space
        trials = completed(study)
        if not trials:
            return self.space
        growing = [(prompt, dim) for prompt, dim in self.space.instruction_dimensions() if dim.growing]
        if growing and self._time_to_grow(study):
            # A code task's prompts take turns: the one whose instruction has had the fewest generations.
            prompt, dim = growing[sum(d.generations for _, d in growing) % len(growing)]
            await self._generation(study, trials, prompt, dim)
        seen = {t.user_attrs["config_hash"] for t in study.get_trials(deepcopy=False) if "config_hash" in t.user_attrs}
        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        for point in next_points(self.space, trials, seen, max(0, size - waiting)):
            study.enqueue_trial(point, user_attrs={"planned": "move"})
        return self.space

    def _time_to_grow(self, study: optuna.Study) -> bool:
        """A generation is due once every factor had a turn since the last one (or since the designed start),
        so that a growing pool neither waits for every initial candidate nor crowds out the other factors."""
        factors = len(self.space.distributions())
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        last = max((i for i, t in enumerate(finished) if t.user_attrs.get("planned") == "child"), default=1)
        return len(finished) - 1 - last >= factors

    async def _generation(
        self, study: optuna.Study, trials: list[Scored], prompt: str | None, dim: InstructionDimension
    ) -> None:
        rng = random.Random(f"evolve:{self.seed}:{dim.generations}" + (f":{prompt}" if prompt else ""))
        parent = self._parent(trials, rng)
        param = instruction_param(prompt)
        parent_idx = int(parent.params.get(param, 0))
        text = dim.candidates[parent_idx]
        base = self.space.base
        if prompt is not None and isinstance(base, PipelineConfig):
            labels = base.prompt(prompt).output.labels
        else:
            labels = self.loaded.spec.task.output.labels
        added: list[tuple[str, str, int | None]] = []
        rejected: list[RejectedProposal] = []

        def consider(child: str | None, source: str) -> None:
            if child is None:
                return
            reason = check_instruction(child, labels)
            if reason:
                rejected.append(RejectedProposal(child, source, reason, parent_idx))
            else:
                added.append((child, source, parent_idx))

        try:
            failures, right = await self._failures(parent, rng, prompt)
            if failures and labels:
                train = self.dataset.train.cases if prompt is None else right
                consider(reflect_on_definitions(text, failures, train, labels, rng), "reflect:definitions")
            elif failures:
                consider(reflect_on_cases(text, failures, labels), "reflect:cases")
            with paying() as spent:  # the proposer's calls, outside any eval: kept with the space
                rewrite = await self._rewrite(text, trials, param, dim, labels, failures) if failures else None
            consider(rewrite, f"reflect:{self.loaded.spec.search.instructions.proposer_model}")
        except (BudgetExceeded, EvalFailed):
            return  # the next trial meets the same limit and stops the search
        grown = dim.grown(added, rejected)
        self.space = SearchSpace(self.space.base, tuple(_replaced(d, dim, grown) for d in self.space.dimensions))
        self.store.save_run_space(
            self.run_id,
            self.space.to_json(),
            more_calls=spent.calls,
            more_usd=spent.usd,
        )
        children = range(len(dim.candidates), len(grown.candidates))
        best = anchor(self.space, trials)  # a child goes with the best other factors, not its parent's stale ones
        for child in children:
            study.enqueue_trial({**best, param: child}, user_attrs={"planned": "child"})
        self.on_event(
            InstructionsEvolved(
                generation=grown.generations,
                parent_trial=parent.number,
                children=tuple(grown.candidates[i] for i in children),
                rejected=tuple(r.reason for r in grown.rejected[len(dim.rejected) :]),
                prompt=prompt,
            )
        )

    def _parent(self, trials: list[Scored], rng: random.Random) -> Scored:
        per_case = {}
        for t in trials:
            if t.experiment_id:
                if t.experiment_id not in self._per_case:  # a finished eval's rows never change: read once
                    rows = self.store.get_rows(t.experiment_id)
                    self._per_case[t.experiment_id] = {r.case_id: r.objective for r in rows if r.objective is not None}
                per_case[t.number] = self._per_case[t.experiment_id]
        weights = pareto_weights(per_case)
        if not weights:
            return incumbent(trials)
        numbers = list(weights)
        chosen = rng.choices(numbers, weights=[weights[n] for n in numbers])[0]
        return next(t for t in trials if t.number == chosen)

    async def _failures(
        self, parent: Scored, rng: random.Random, prompt: str | None
    ) -> tuple[list[Failure], tuple[Case, ...]]:
        """The parent's mistakes on a seeded sample of train cases (a recorded eval, role ``reflection``). For a
        code task's ``prompt``: that prompt's calls in the rows that ended wrong (its variables, its answer, the
        answer the row should have ended with), and as cases its calls in the rows that ended right (its
        variables and its parsed answer: what label definitions are drawn from)."""
        n = self.loaded.spec.search.instructions.reflection_rows
        cases = [c for c in self.dataset.train.cases if c.expected is not None]
        sample = Split(name="train", cases=tuple(rng.sample(cases, min(n, len(cases)))))
        if not sample.cases:
            return [], ()
        result = await evaluate_config(
            self.loaded,
            self.dataset.model_copy(update={"train": sample}),
            self.space.config(parent.params),
            split="train",
            services=self.services,
            origin=Origin(run_id=self.run_id, role=ExperimentRole.REFLECTION, trial=parent.number),
        )
        scored = [row for row in result.rows if row.objective is not None]
        if prompt is None:
            wrong = [r for r in scored if r.objective is not None and r.objective < 1.0]
            return [(r.input, r.output or "", example_output(r.expected)) for r in wrong], ()
        failures = [
            (s.input, s.output or "", example_output(r.expected))
            for r in scored
            if r.objective is not None and r.objective < 1.0
            for s in r.trace or ()
            if s.prompt == prompt
        ]
        right = tuple(
            Case(id=f"{r.case_id}:{i}", input=s.input, expected=s.parsed if s.parsed is not None else s.output)
            for r in scored
            if r.objective is not None and r.objective >= 1.0
            for i, s in enumerate(r.trace or ())
            if s.prompt == prompt and s.output is not None
        )
        return failures, right

    async def _rewrite(
        self,
        parent: str,
        trials: list[Scored],
        param: str,
        dim: InstructionDimension,
        labels: tuple[str, ...] | None,
        failures: list[Failure],
    ) -> str | None:
        """The proposer model's rewrite, when the spec names one (the task model is no proposer here: a
        small one writes unusable instructions, and the data's edits do its work)."""
        model = self.loaded.spec.search.instructions.proposer_model
        if not model:
            return None
        best: dict[int, float] = {}
        for t in trials:
            i = int(t.params.get(param, 0))
            best[i] = max(best.get(i, 0.0), t.score)
        evaluator = Evaluator(self.services)

        async def call(request: ModelRequest, repeat: int) -> ModelResponse:
            return (await evaluator.complete(request, repeat))[0]

        return await ReflectiveProposer(model).rewrite(
            parent=parent,
            trajectory=[(dim.candidates[i], s) for i, s in best.items()],
            failures=failures[:4],
            labels=labels,
            call=call,
            repeat=dim.generations,
        )


def _replaced(d: Any, old: InstructionDimension, new: InstructionDimension) -> Any:
    if d is old:
        return new
    if isinstance(d, ScopedDimension) and d.inner is old:
        return ScopedDimension(d.prompt, new)
    return d


__all__ = ["EvolvePlan", "Scored", "completed", "incumbent", "next_points", "pareto_weights"]
