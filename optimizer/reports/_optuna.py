"""The run's Optuna study as report values, and in-memory studies rebuilt from a report for Optuna's charts.

Reading: the study ``run-<id>`` lives in the store's database. Rendering works from the report alone, so the
charts replay the report's trials into an in-memory study and hand it to ``optuna.visualization``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.importance import BaseImportanceEvaluator, PedAnovaImportanceEvaluator
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from promptopt.reports._values import FrontObjective, Importance, LeaderboardRow, RunReport, TrialPoint

_STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.FAIL: "failed",
    TrialState.PRUNED: "pruned",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
_BACK = {
    "complete": TrialState.COMPLETE,
    "duplicate": TrialState.COMPLETE,
    "failed": TrialState.FAIL,
    "pruned": TrialState.PRUNED,
    "running": TrialState.RUNNING,
    "waiting": TrialState.WAITING,
}


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines ("A new study created in memory") off while a report is made, then as they were."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def load_trials(store_url: str, run_id: str) -> tuple[list[FrozenTrial], tuple[str, ...]]:
    """Every trial of the run's study and its directions; ``([], ())`` when the run made no study yet."""
    from promptopt.search import optuna_storage_url

    storage = optuna.storages.RDBStorage(optuna_storage_url(store_url))
    try:
        with quiet_optuna():
            study = optuna.load_study(study_name=f"run-{run_id}", storage=storage)
        directions = tuple(d.name.lower() for d in study.directions)
        return study.get_trials(deepcopy=False), directions
    except KeyError:  # the run was killed before it created its study
        return [], ()
    finally:
        storage.engine.dispose()


def trial_point(trial: FrozenTrial, paid: Mapping[int, tuple[float, int]], model: str | None) -> TrialPoint:
    """``paid`` maps a trial number to the (dollars, calls) of its recorded evals."""
    duplicate_of = trial.user_attrs.get("duplicate_of")
    state = _STATES.get(trial.state, "failed")
    if state == "complete" and duplicate_of is not None:
        state = "duplicate"
    usd, calls = (0.0, 0) if duplicate_of is not None else paid.get(trial.number, (0.0, 0))
    values = tuple(trial.values) if trial.values is not None else None
    return TrialPoint(
        number=trial.number,
        state=state,
        values=values,
        params=dict(trial.params),
        model=model,
        cost_usd=usd,
        model_calls=calls,
        duplicate_of=duplicate_of,
        error=trial.user_attrs.get("error"),
    )


def distributions(trials: list[FrozenTrial]) -> dict[str, str]:
    return {name: distribution_to_json(d) for t in trials for name, d in t.distributions.items()}


def importance(trials: list[FrozenTrial], directions: tuple[str, ...]) -> Importance:
    """PED-ANOVA importances (Optuna's default evaluator) for the first objective, or why there are none."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    params = {name for t in complete for name in t.params}
    if len(complete) < 2:
        return Importance(note=f"{len(complete)} completed trial(s): importance needs at least 2")
    if len(params) < 2:
        return Importance(note=f"only {len(params)} parameter searched: its importance is 1 by definition")
    if len({t.values[0] for t in complete}) < 2:
        return Importance(note="every completed trial scored the same: no parameter made a difference")
    study = _study(directions)
    study.add_trials(complete)
    sign = -1.0 if directions[0] == "maximize" else 1.0  # PED-ANOVA explains low target values
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*computes the importances of params to achieve low")
        try:
            values = optuna.importance.get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(), target=lambda t: sign * t.values[0]
            )
        except (ValueError, RuntimeError) as exc:  # a degenerate space Optuna cannot split
            return Importance(note=f"Optuna could not compute importances: {exc}")
    if not all(math.isfinite(v) for v in values.values()):
        return Importance(note="Optuna returned non-finite importances")
    return Importance(values={k: float(v) for k, v in values.items()})


class Precomputed(BaseImportanceEvaluator):
    """An evaluator that returns the importances a report already holds, so ``plot_param_importances`` draws
    them without computing again."""

    def __init__(self, values: Mapping[str, float]) -> None:
        self._values = dict(values)

    def evaluate(self, study: optuna.Study, params: list[str] | None = None, *, target: Any = None) -> dict[str, float]:
        wanted = self._values if params is None else {k: v for k, v in self._values.items() if k in params}
        return dict(sorted(wanted.items(), key=lambda kv: kv[1], reverse=True))


def _study(directions: tuple[str, ...]) -> optuna.Study:
    with quiet_optuna():
        return optuna.create_study(directions=[StudyDirection[d.upper()] for d in directions or ("maximize",)])


def replay(report: RunReport) -> optuna.Study:
    """An in-memory study with the report's trials, numbered as in the run (for Optuna's charts)."""
    dists = {name: json_to_distribution(d) for name, d in report.distributions.items()}
    study = _study(report.directions)
    trials = []
    for point in report.trials:
        state = _BACK[point.state]
        usable = state == TrialState.COMPLETE and point.values is not None
        trials.append(
            create_trial(
                state=state if usable or state != TrialState.COMPLETE else TrialState.FAIL,
                values=list(point.values) if usable and point.values is not None else None,
                params={k: v for k, v in point.params.items() if k in dists},
                distributions={k: dists[k] for k in point.params if k in dists},
                user_attrs={"model": point.model} if point.model else None,
            )
        )
    study.add_trials(trials)
    return study


def front_study(rows: tuple[LeaderboardRow, ...], objective: FrontObjective) -> optuna.Study:
    """An in-memory two-objective study (validation score up, ``objective`` per row down) with the leaderboard's
    rows that know both under their trial numbers (the numbers in between are failed placeholders, which the
    charts leave out)."""
    points: dict[int, FrozenTrial] = {}
    for r in rows:
        figure = r.per_row(objective)
        if r.validation is not None and figure is not None:
            points[r.trial] = create_trial(
                values=[r.validation.mean, figure], user_attrs={"configuration": r.description, "model": r.model}
            )
    study = _study(("maximize", "minimize"))
    study.add_trials([points.get(n) or create_trial(state=TrialState.FAIL) for n in range(max(points, default=-1) + 1)])
    return study
