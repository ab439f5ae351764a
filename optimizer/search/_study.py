"""The Optuna study: samplers, storage in our store's database, and recovery of interrupted trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from promptopt.config import LabelCalibration, PromptConfig, TaskConfig
from promptopt.search._guided import GuidedSampler
from promptopt.search_spaces import SearchSpace

SAMPLERS = ("auto", "tpe", "random", "grid", "evolve", "guided")
STARTS = ("baseline", "designed", "region", "screen")
GUIDED_STARTS = ("region", "screen")  # starts only the guided sampler has


def resolve_sampler(sampler: str, start: str, *, calibrated: bool, objectives: int) -> tuple[str, str]:
    """The sampler and start ``auto`` stands for (any other sampler is returned as it is).

    With calibrated label scores in the space and one objective: the guided sampler with the region start
    (calibrated scores, the most examples), which beat random search over the same space at MIPROv2's budget
    (experiments/RESULTS.md, table 2, ours-cal); a region or screen start asked for: the guided sampler (the
    only one that has them); otherwise TPE, which no other sampler has beaten significantly without calibration.
    """
    if sampler != "auto":
        return sampler, start
    if start in GUIDED_STARTS:  # with several objectives, plan_run refuses it, naming --sampler
        return "guided", start
    if objectives == 1 and calibrated and start == "baseline":
        return "guided", "region"
    return "tpe", start


INTERRUPTED = "interrupted; retried"
CALIBRATION_ATTR = "calibration"  # a calibrated trial's label bias, fitted by its validation eval


def trial_config(space: SearchSpace, trial: FrozenTrial) -> TaskConfig:
    """The configuration ``trial`` evaluated: its params in ``space``, with the label bias its eval fitted (a
    calibrated configuration keeps that bias for every later eval: test, confirmation, the registry)."""
    config = space.config(trial.params)
    fitted = trial.user_attrs.get(CALIBRATION_ATTR)
    if fitted and isinstance(config, PromptConfig) and config.calibration is not None:
        config = config.model_copy(update={"calibration": LabelCalibration.model_validate(fitted)})
    return config


class ExhaustiveGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for an ask/tell loop: it calls ``study.stop()`` when the grid is used up, which
    only works inside ``study.optimize``; here the run loop asks :meth:`unvisited` instead."""

    def after_trial(self, study: optuna.Study, trial: Any, state: TrialState, values: Any) -> None:
        return None

    def unvisited(self, study: optuna.Study) -> int:
        return len(self._get_unvisited_grid_ids(study))


def make_sampler(
    name: str, space: SearchSpace, seed: int, *, multi_objective: bool, start: str = "baseline"
) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, constant liar for parallel trials), random, an exhaustive grid, or guided (an additive
    model's best unseen configuration after a short random start, see ``_guided``; ``start="region"``: inside
    :meth:`SearchSpace.region` first; ``start="screen"``: the model right after the baseline and the queued
    :meth:`SearchSpace.screen` points, no random start-up); all seeded."""
    if start in GUIDED_STARTS and name != "guided":
        raise ValueError(f"the {start} start needs the guided sampler, not {name!r}")
    if name == "tpe":
        if multi_objective:
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=8)
    if name in ("random", "evolve"):  # evolve plans its own trials (see _evolve); random fills what it cannot name
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return ExhaustiveGridSampler(space.grid(), seed=seed)
    if name == "guided":
        if multi_objective:
            raise ValueError("the guided sampler models one objective; use tpe or random with several")
        return GuidedSampler(
            space.distributions(),
            seed=seed,
            key=lambda params: space.config(params).hash,
            region=space.region() if start == "region" else None,
            n_startup=1 + len(space.screen()) if start == "screen" else 5,
        )
    raise ValueError(f"unknown sampler {name!r}; expected one of {SAMPLERS}")


def optuna_storage_url(store_url: str) -> str:
    return (
        store_url.replace("postgresql://", "postgresql+psycopg://", 1)
        if store_url.startswith("postgresql://")
        else store_url
    )


def open_study(
    *,
    run_id: str,
    store_url: str,
    sampler: optuna.samplers.BaseSampler,
    directions: Sequence[Literal["minimize", "maximize"]],
) -> optuna.Study:
    """Create or load the run's study in the store's database (``optuna-dashboard <store url>`` opens it)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(optuna_storage_url(store_url), engine_kwargs={"pool_pre_ping": True})
    return optuna.create_study(
        study_name=f"run-{run_id}", storage=storage, sampler=sampler, directions=directions, load_if_exists=True
    )


def recover_interrupted(study: optuna.Study) -> list[dict[str, Any]]:
    """Trials left RUNNING by a killed process are marked FAIL and their params queued again, so the
    retried trial evaluates the same configuration (its finished calls come from the cache)."""
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "error", INTERRUPTED)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
        requeued.append(trial.params)
    return requeued
