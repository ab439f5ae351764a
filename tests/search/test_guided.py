"""The guided sampler: random start-up, then the additive model's best untried configuration; never the same
configuration twice; seeded; and a whole run with it on the fake backend finds the known best."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from promptopt.errors import InputError
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions
from promptopt.search._guided import GuidedSampler, additive_effects, levels
from promptopt.search._study import make_sampler, optuna_storage_url
from promptopt.search_spaces import SearchSpace
from promptopt.store import get_store
from tests.search.helpers import SPEC, known_best
from tests.search.test_search import search

SPACE = {
    "a": CategoricalDistribution([0, 1, 2]),
    "b": IntDistribution(0, 3),
    "c": CategoricalDistribution([False, True]),
}


def additive(params: dict) -> float:  # no noise, no interaction: the best point is a=2, b=3, c=True
    return 0.2 * params["a"] + 0.1 * params["b"] + 0.3 * params["c"]


def study_of(sampler: optuna.samplers.BaseSampler, trials: int, objective=additive, space=SPACE) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(trials):
        trial = study.ask(space)
        study.tell(trial, objective(trial.params))
    return study


def test_start_up_trials_are_the_random_samplers_and_later_ones_follow_the_model():
    guided = study_of(GuidedSampler(SPACE, seed=3, n_startup=4, explore=0.0), 6)
    random = study_of(optuna.samplers.RandomSampler(seed=3), 4)
    assert [t.params for t in guided.trials[:4]] == [t.params for t in random.trials]
    grand, effects = additive_effects([(t.params, t.value) for t in guided.trials[:4]], ["a", "b", "c"])

    def predicted(p: dict) -> float:
        return grand + sum(effects[n].get(p[n], (0.0, 0))[0] for n in "abc")

    seen = [t.params for t in guided.trials[:4]]
    points = [{"a": a, "b": b, "c": c} for a in (0, 1, 2) for b in range(4) for c in (False, True)]
    best = max(predicted(p) for p in points if p not in seen)
    assert predicted(guided.trials[4].params) == pytest.approx(best)


def test_it_reaches_the_optimum_sooner_than_random_search_on_an_additive_objective():
    def first_optimum(sampler) -> int:  # trial number of the first optimum, 24 when not reached in 24
        study = study_of(sampler, 24)
        return next((t.number for t in study.trials if t.value == pytest.approx(1.0)), 24)

    guided = [first_optimum(GuidedSampler(SPACE, seed=s)) for s in range(8)]
    random = [first_optimum(optuna.samplers.RandomSampler(seed=s)) for s in range(8)]
    assert sum(guided) < sum(random)
    assert max(guided) <= 12  # 5 start-up trials, then the model needs few steps on a noise-free objective


def test_no_configuration_twice_even_when_params_differ_but_build_the_same():
    # key: b is moot when c is False (as few-shot strategy is at k = 0), so those points are one configuration
    def key(p: dict) -> str:
        return f"{p['a']}-{p['b'] if p['c'] else '*'}-{p['c']}"

    study = study_of(GuidedSampler(SPACE, seed=0, key=key), 15)
    keys = [key(t.params) for t in study.trials]
    assert len(keys) == len(set(keys))
    # 3 x 4 x 1 + 3 x 1 = 15 distinct configurations: all of them, once each
    assert len(set(keys)) == 15


def test_same_seed_same_trials_and_a_float_is_drawn_not_modelled():
    space = {**SPACE, "t": FloatDistribution(0.0, 1.0)}

    def objective(p: dict) -> float:
        return additive(p) + 0.01 * p["t"]

    a = study_of(GuidedSampler(space, seed=5), 9, objective, space)
    b = study_of(GuidedSampler(space, seed=5), 9, objective, space)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert levels(space["t"]) is None and len({t.params["t"] for t in a.trials}) == 9


def test_several_objectives_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="one objective"):
        make_sampler("guided", None, 0, multi_objective=True)  # type: ignore[arg-type]


def test_a_guided_run_finds_the_known_best_configuration(tmp_path):
    result, _, run = search(tmp_path, RunOptions(sampler="guided", seed=0, parallel=2, max_trials=16))
    assert result.best.validation_score == 1.0
    assert "EXPERT" in result.best.config["messages"][0]["content"]
    assert len(result.best.config["examples"]) == 2
    study = optuna.load_study(study_name=f"run-{result.run_id}", storage=optuna_storage_url(str(run.store.url)))
    # after the random start-up (baseline + 4), every trial is a configuration not evaluated before
    assert not [t.number for t in study.trials[5:] if "duplicate_of" in t.user_attrs]
    configs = [json.dumps(c.config, sort_keys=True) for c in result.leaderboard]
    assert len(configs) == len(set(configs))


def test_a_run_asking_guided_for_several_objectives_is_bad_input_before_anything_runs(tmp_path):
    backend = ScriptedBackend(known_best)
    with pytest.raises(InputError, match="guided models one objective, got score,cost") as err:
        search(tmp_path, RunOptions(sampler="guided", objectives=("score", "cost")), backend=backend)
    assert err.value.field == "sampler"
    assert not backend.calls
    assert get_store(f"sqlite:///{tmp_path / 's.db'}").list_runs() == []  # no run begun


REGION = {"b": [2, 3], "c": [True]}  # 3 (a) x 2 x 1 = 6 points


def inside(params: dict) -> bool:
    return params["b"] in REGION["b"] and params["c"] is True


def test_the_region_start_draws_and_models_inside_the_region_until_it_is_used_up_then_goes_outside():
    study = study_of(GuidedSampler(SPACE, seed=1, region=REGION), 12)
    where = [inside(t.params) for t in study.trials]
    assert where == [True] * 6 + [False] * 6
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 12  # never one point twice
    # the start-up draws differ by seed; the region does not
    other = study_of(GuidedSampler(SPACE, seed=2, region=REGION), 5)
    assert all(inside(t.params) for t in other.trials)
    assert [t.params for t in other.trials] != [t.params for t in study.trials[:5]]


def test_a_region_naming_no_level_of_its_parameter_is_refused():
    with pytest.raises(ValueError, match="names no level"):
        GuidedSampler(SPACE, seed=0, region={"c": ["yes"]})
    for start in ("region", "screen"):
        with pytest.raises(ValueError, match=f"the {start} start needs the guided sampler, not 'tpe'"):
            make_sampler("tpe", None, 0, multi_objective=False, start=start)  # type: ignore[arg-type]


def test_a_region_run_tries_only_the_most_examples_after_the_baseline_and_finds_the_known_best(tmp_path):
    result, _, run = search(tmp_path, RunOptions(sampler="guided", start="region", seed=0, max_trials=12))
    space = SearchSpace.from_json(run.store.get_run(result.run_id).space)
    assert space.region() == {"fewshot_k": [1, 2]}  # the helper's spec: max_k 2, no constrained choice
    study = optuna.load_study(study_name=f"run-{result.run_id}", storage=optuna_storage_url(str(run.store.url)))
    assert study.trials[0].params["fewshot_k"] == 0  # the baseline: the spec as written
    assert {t.params["fewshot_k"] for t in study.trials[1:]} <= {1, 2}
    assert result.best.validation_score == 1.0
    assert "EXPERT" in result.best.config["messages"][0]["content"]


def test_a_screen_start_runs_the_two_by_two_of_the_designed_values_then_the_model_with_no_random_start(tmp_path):
    spec = {"constrained": [False, True], **json.loads(json.dumps(SPEC["search"]))}
    options = RunOptions(sampler="guided", start="screen", seed=0, max_trials=10)
    result, _, run = search(tmp_path, options, search=spec)
    space = SearchSpace.from_json(run.store.get_run(result.run_id).space)
    screen = space.screen()
    assert [(p["constrained"], p["fewshot_k"]) for p in screen] == [(False, 2), (True, 0), (True, 2)]
    study = optuna.load_study(study_name=f"run-{result.run_id}", storage=optuna_storage_url(str(run.store.url)))
    assert [t.params for t in study.trials[1:4]] == screen
    assert all(t.user_attrs.get("designed") for t in study.trials[1:4])
    # from trial 4 on, the additive model's pick: the best untried point given trials 0-3 (explore bonus 0.5)
    sampler = GuidedSampler(space.distributions(), seed=0, n_startup=4, key=lambda p: space.config(p).hash)
    replay = optuna.create_study(direction="maximize", sampler=sampler)
    for t in study.trials[:4]:
        replay.add_trial(t)
    assert replay.ask(space.distributions()).params == study.trials[4].params
