"""Warm start of a scheduled run: the production version is trial 0 and the best configurations of the
previous run are evaluated right after it, before the sampler proposes anything.

It runs the search's own preparation steps (``promptopt.search``: :func:`begin_run`, :func:`build_space`,
:func:`open_run_study`) and changes two things: the space is rebased on the production configuration (its
examples included) with the previous winners' instructions added, and the queued start trials are the
production version and those winners. ``SearchRun.run`` then finds the run begun, its space kept and its
study not empty, and starts with the queued trials.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import optuna
import yaml
from pydantic import BaseModel, ConfigDict

from promptopt.config import PromptConfig
from promptopt.data import content_hash
from promptopt.engine import BudgetUse
from promptopt.search import SearchRun, begin_run, build_space, open_run_study
from promptopt.search_spaces import DemoSetDimension, Dimension, FewShotDimension, InstructionDimension, SearchSpace
from promptopt.spec import LoadedSpec, SplitRatio, spec_from_data
from promptopt.store import Store


class WarmStart(BaseModel):
    """What was enqueued: the production version (``baseline``) and the previous winners that fit the space."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    prepared: bool
    enqueued_previous: int = 0
    skipped_previous: int = 0
    dropped_few_shot: bool = False


_DEMOS = (FewShotDimension, DemoSetDimension)  # dimensions that replace the production version's examples


def derive_spec(loaded: LoadedSpec, data_file: Path, production: PromptConfig | None, *, work_dir: Path) -> LoadedSpec:
    """The spec of a scheduled run: the task as the production version has it (prompt, model, decoding,
    output), the data the given logs file (split as the spec says), everything else as written.

    The derived spec is also written to ``work_dir`` (``spec-<hash>.yaml``) for the record; relative paths
    in it (custom scorers, judge prompts) still resolve against the original spec's folder.
    """
    data = loaded.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    if production is not None:
        data["task"].update(_task_fields(production))
    original = loaded.spec.dataset
    split = original.split if original.file and original.split else SplitRatio.model_validate({})
    data["dataset"] = {
        "file": str(data_file.resolve()),
        "split": split.model_dump(),
        "seed": original.seed,
        "limit": dict(original.limit),
    }
    path = work_dir / f"spec-{content_hash(data)[:16]}.yaml"
    spec = spec_from_data(data, str(path))
    if not path.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        header = f"# derived by the scheduler from {loaded.path}; relative paths resolve against its folder\n"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return LoadedSpec(spec=spec, path=loaded.path)


def _task_fields(config: PromptConfig) -> dict[str, Any]:
    dumped = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    fields = {
        "prompt": dumped["messages"],
        "model": dumped["model"],
        "params": dumped["params"],
        "output": dumped["output"],
        "constrained": dumped["constrained"],
    }
    for key in ("tools", "response_format"):
        if key in dumped:
            fields[key] = dumped[key]
    return fields


def previous_best(store: Store, run_id: str | None, k: int) -> list[PromptConfig]:
    """The ``k`` best configurations (by validation score) of a finished run, best first (none of a code task,
    whose warm start is not built yet)."""
    if run_id is None or k == 0:
        return []
    run = store.get_run(run_id)
    board = (run.result or {}).get("leaderboard", [])
    ranked = [c for c in board if c.get("validation_score") is not None and "function" not in c["config"]]
    return [PromptConfig.model_validate(c["config"]) for c in ranked[:k]]


def params_for(space: SearchSpace, config: PromptConfig) -> dict[str, Any] | None:
    """Trial parameters of ``space`` that stand for ``config``, or ``None`` when the space cannot express it.

    A dimension's value fits when applying it to ``config`` leaves ``config`` unchanged; the whole is then
    checked by content hash.
    """
    params: dict[str, Any] = {}
    for dim in space.dimensions:
        found = next((p for p in _grid(dim) if dim.apply(config, p).hash == config.hash), None)
        if found is None:
            return None
        params.update(found)
    return params if space.config(params).hash == config.hash else None


def _grid(dim: Dimension) -> list[dict[str, Any]]:
    grid = dim.grid()
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(grid[n] for n in names))]


def rebase(
    space: SearchSpace, production: PromptConfig | None, previous: list[PromptConfig]
) -> tuple[SearchSpace, bool]:
    """``space`` over the production configuration, with the previous winners' instructions added.

    A production version with examples keeps them: its few-shot dimension is dropped (its baseline, no
    examples, would otherwise stand for a configuration that is not the production one). Returns the space
    and whether that happened.
    """
    base = space.base if production is None else production
    dims = list(space.dimensions)
    dropped = bool(production is not None and production.examples and any(isinstance(d, _DEMOS) for d in dims))
    if dropped:
        dims = [d for d in dims if not isinstance(d, _DEMOS)]
    at = next((i for i, d in enumerate(dims) if isinstance(d, InstructionDimension)), None)
    current: InstructionDimension = dims[at] if at is not None else InstructionDimension((base.instruction,))  # type: ignore[assignment]
    extra = tuple(dict.fromkeys(c.instruction for c in previous if c.instruction not in current.candidates))
    if extra:
        widened = InstructionDimension(
            current.candidates + extra,
            current.sources + ("previous",) * len(extra),
            parents=current.parents + (None,) * len(extra),
            rejected=current.rejected,
            growing=current.growing,
            generations=current.generations,
        )
        dims = [widened, *dims] if at is None else [widened if i == at else d for i, d in enumerate(dims)]
    return SearchSpace(base, tuple(dims)), dropped


async def prepare_warm_start(
    search: SearchRun, *, production: PromptConfig | None, previous: list[PromptConfig]
) -> WarmStart:
    """Begin ``search``'s run and enqueue the production version, then the previous winners, as its first
    trials. A run prepared before (a job taken over after its scheduler died) is left as it is."""
    loaded, dataset, options, store = search.loaded, search.dataset, search.options, search.store
    run = begin_run(store, loaded, dataset, options)
    if run.space:
        return WarmStart(run_id=run.id, prepared=False)
    budget = search.plan.search_budget(BudgetUse())
    built = await build_space(
        loaded,
        dataset,
        search.services.but(budget=budget),
        run_id=run.id,
        seed=options.seed,
        on_event=search.on_event,
        factors=options.sampler == "evolve",
    )
    space, dropped = rebase(built.space, production, previous)
    store.save_run_space(run.id, space.to_json(), calls=built.calls, usd=built.usd)
    study = open_run_study(store, run.id, space, options)
    try:
        if study.get_trials(deepcopy=False):
            return WarmStart(run_id=run.id, prepared=False)
        enqueued = _enqueue(study, space, previous)
    finally:
        _release(study)
    return WarmStart(
        run_id=run.id,
        prepared=True,
        enqueued_previous=enqueued,
        skipped_previous=len(previous) - enqueued,
        dropped_few_shot=dropped,
    )


def _enqueue(study: optuna.Study, space: SearchSpace, previous: list[PromptConfig]) -> int:
    """The baseline (the production version), then each previous winner the space can express, once."""
    study.enqueue_trial(space.baseline(), user_attrs={"baseline": True})
    seen, enqueued = {space.config(space.baseline()).hash}, 0
    for config in previous:
        params = params_for(space, config)
        if params is None or config.hash in seen:
            continue
        seen.add(config.hash)
        study.enqueue_trial(params, user_attrs={"warm_start": "previous run"})
        enqueued += 1
    return enqueued


def _release(study: optuna.Study) -> None:
    """Close the connections of this handle on the study (``SearchRun.run`` opens its own)."""
    storage = getattr(study._storage, "_backend", study._storage)  # optuna wraps RDBStorage in a cache
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()
