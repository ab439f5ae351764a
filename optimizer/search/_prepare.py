"""Preparing a run: its record (begun, or found again to resume), its search space (built once and kept
with the run) and its Optuna study (in the store's database, with the start trials queued).

Each step is a function of its own so that a warm start (``promptopt.schedules``) calls the same steps and
changes only the space and the queued trials.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import optuna

from promptopt.config import PipelineConfig, base_candidate
from promptopt.data import Dataset, content_hash
from promptopt.engine import Evaluator, ExperimentRole, Origin, Services, paying
from promptopt.search._build import PrePass, assemble_space, needs_prepass, prepass, propose_instructions
from promptopt.search._code_space import assemble_code_space, propose_for_prompts
from promptopt.search._events import OnEvent, PrepassStarted, SpaceBuilt, TrialsRecovered
from promptopt.search._finetune import train_fine_tunes
from promptopt.search._plan import RunOptions
from promptopt.search._study import make_sampler, open_study, recover_interrupted
from promptopt.search_spaces import RejectedProposal, SearchSpace
from promptopt.spec import LoadedSpec

if TYPE_CHECKING:
    from promptopt.finetune import LoraTrainer
    from promptopt.store import RunRecord, Store

DIRECTIONS: dict[str, Literal["minimize", "maximize"]] = {
    "score": "maximize",
    "cost": "minimize",
    "latency": "minimize",
}


def run_key(loaded: LoadedSpec, dataset: Dataset, options: RunOptions) -> str:
    """Same spec, data and search settings -> same run (so the same command resumes it); for a code task, the
    same function code too (an edited function starts a new run instead of mixing two versions in one)."""
    base = base_candidate(loaded) if loaded.spec.task.is_code else None
    return content_hash(
        {
            "spec": loaded.spec.model_dump(mode="json", by_alias=True),
            **({"code": base.code_hash} if isinstance(base, PipelineConfig) else {}),
            "data": dataset.hash,
            "sampler": options.sampler,
            "seed": options.seed,
            "objectives": options.objectives,
        }
    )


def begin_run(
    store: Store, loaded: LoadedSpec, dataset: Dataset, options: RunOptions, *, resume_id: str | None = None
) -> RunRecord:
    """The run's record: ``resume_id``'s, the unfinished run of the same command's, or a new one."""
    return store.begin_run(
        key=run_key(loaded, dataset, options),
        name=loaded.spec.task.name,
        resume_id=resume_id,
        spec=loaded.spec.model_dump(mode="json", by_alias=True),
        settings=options.model_dump(mode="json"),
        dataset_hash=dataset.hash,
    )


@dataclass(frozen=True)
class BuiltSpace:
    """A freshly built space and what building it paid outside any eval (proposal calls)."""

    space: SearchSpace
    proposals: tuple[str, ...]
    calls: int
    usd: float


async def build_space(
    loaded: LoadedSpec,
    dataset: Dataset,
    services: Services,
    *,
    run_id: str,
    seed: int,
    on_event: OnEvent,
    factors: bool = False,
    trainer: LoraTrainer | None = None,
) -> BuiltSpace:
    """Pre-pass of the baseline on a train sample where the space needs one, instruction proposals, the
    spec's fine-tune jobs (trained, or found again by their hash), then the dimensions
    (``promptopt.search_spaces``; ``factors``: the ``evolve`` search's, see :func:`assemble_space`). Every
    call goes through ``services`` (budget and cache)."""
    from promptopt.scorers import build_scorers

    evaluator = Evaluator(services.but(settings=loaded.spec.eval))
    scorers = build_scorers(
        loaded.spec.scorers, base_dir=loaded.base_dir, backend=evaluator.as_backend(), source=str(loaded.path)
    )
    pre, refused = PrePass((), ()), list[RejectedProposal]()
    try:
        if needs_prepass(loaded):
            on_event(PrepassStarted())
            pre = await prepass(
                loaded,
                dataset,
                evaluator,
                scorers,
                origin=Origin(run_id=run_id, role=ExperimentRole.PREPASS),
                seed=seed,
            )
        with paying() as spent:  # outside any eval: the run keeps the count with its space
            if loaded.spec.task.is_code:
                code = await _code_space(loaded, pre, evaluator, seed=seed, factors=factors)
            else:
                proposals, refused = await propose_instructions(loaded, dataset, evaluator, pre, seed=seed)
    finally:
        evaluator.close()
        await asyncio.gather(*(s.aclose() for s in scorers))
    if loaded.spec.task.is_code:
        return BuiltSpace(code[0], code[1], spent.calls, spent.usd)
    # A provider job reserves its estimated dollars in the run's budget before it uploads anything.
    fine_tune = await train_fine_tunes(loaded, dataset, pre, on_event=on_event, budget=services.budget, trainer=trainer)
    space = assemble_space(
        loaded, dataset, pre, proposals, seed=seed, factors=factors, refused=tuple(refused), fine_tune=fine_tune
    )
    # Training dollars are kept with the space, as proposal calls are: a resumed run counts them as spent.
    training_usd = fine_tune.training_usd() if fine_tune else 0.0
    return BuiltSpace(space, tuple(proposals), spent.calls, spent.usd + training_usd)


async def _code_space(
    loaded: LoadedSpec, pre: PrePass, evaluator: Evaluator, *, seed: int, factors: bool
) -> tuple[SearchSpace, tuple[str, ...]]:
    """A code task's space: per-prompt proposals from the pre-pass traces, then every prompt's dimensions."""
    base = base_candidate(loaded)
    assert isinstance(base, PipelineConfig)
    proposals, refused = await propose_for_prompts(loaded, base, pre.traces, evaluator, seed=seed)
    space = assemble_code_space(loaded, base, pre.traces, proposals, seed=seed, refused=refused, factors=factors)
    return space, tuple(text for texts in proposals.values() for text, _ in texts)


async def run_space(
    store: Store,
    run: RunRecord,
    loaded: LoadedSpec,
    dataset: Dataset,
    services: Services,
    *,
    seed: int,
    on_event: OnEvent,
    factors: bool = False,
    trainer: LoraTrainer | None = None,
) -> SearchSpace:
    """The space kept with ``run``, or a new one built and kept (with its proposal calls); ``trainer`` trains
    its LoRA fine-tunes (default: in a thread of this process)."""
    if run.space:
        return SearchSpace.from_json(run.space)
    built = await build_space(
        loaded, dataset, services, run_id=run.id, seed=seed, on_event=on_event, factors=factors, trainer=trainer
    )
    store.save_run_space(run.id, built.space.to_json(), calls=built.calls, usd=built.usd)
    on_event(SpaceBuilt(tuple(d.kind for d in built.space.dimensions), built.proposals))
    return built.space


def open_run_study(store: Store, run_id: str, space: SearchSpace, options: RunOptions) -> optuna.Study:
    """The run's study ``run-<id>`` in the store's database, with the options' sampler."""
    return open_study(
        run_id=run_id,
        store_url=store.url,
        directions=[DIRECTIONS[o] for o in options.objectives],
        sampler=make_sampler(
            options.sampler,
            space,
            options.seed,
            multi_objective=len(options.objectives) > 1,
            start=options.start,
        ),
    )


def queue_start(study: optuna.Study, space: SearchSpace, options: RunOptions, *, on_event: OnEvent) -> None:
    """Requeue trials a killed process left running; on a new study, queue the baseline (the spec as written)
    and, with ``start="designed"`` (always in the ``evolve`` search), the designed points, ahead of the
    sampler's own trials."""
    requeued = recover_interrupted(study)
    if requeued:
        on_event(TrialsRecovered(len(requeued)))
    if study.get_trials(deepcopy=False):
        return
    study.enqueue_trial(space.baseline(), user_attrs={"baseline": True})
    if (options.start == "designed" and options.sampler != "grid") or options.sampler == "evolve":
        for point in space.design():
            study.enqueue_trial(point, user_attrs={"designed": True})
    if options.start == "screen":
        for point in space.screen():
            study.enqueue_trial(point, user_attrs={"designed": True})
