"""The optimizer on a fake backend: known best found, trial 0 is the baseline, seeded reproducibility,
budget stop, held-out verdict and duplicate configurations not paid twice."""

import asyncio

import pytest

from promptopt.cache import DiskResponseCache
from promptopt.engine import Services
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, SearchRun
from promptopt.store import get_store
from tests.search.helpers import known_best, loaded_and_data, write_spec


def search(tmp_path, options=None, backend=None, cache_dir="cache", store_name="s.db", **spec_overrides):
    loaded, dataset = loaded_and_data(write_spec(tmp_path, **spec_overrides))
    backend = backend or ScriptedBackend(known_best)
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=options or RunOptions(seed=0, parallel=2),
        services=Services(
            backend=backend,
            cache=DiskResponseCache(tmp_path / cache_dir),
            records=get_store(f"sqlite:///{tmp_path / store_name}"),
        ),
    )
    return asyncio.run(run.run()), backend, run


def test_finds_the_known_best_configuration(tmp_path):
    result, _, _ = search(tmp_path, RunOptions(seed=0, parallel=2, max_trials=24))
    assert result.best.validation_score == 1.0
    assert "EXPERT" in result.best.config["messages"][0]["content"]
    assert len(result.best.config["examples"]) == 2
    assert result.best.test_score == 1.0


def test_trial_zero_is_the_spec_as_written_and_the_verdict_is_paired(tmp_path):
    result, _, _ = search(tmp_path, RunOptions(seed=0, parallel=2, max_trials=12))
    assert result.baseline.trial == 0
    assert result.baseline.config["messages"][0]["content"] == "Label it."
    assert result.baseline.config["examples"] == []
    assert result.baseline.test_score is not None and result.best.test_score is not None
    assert result.lift == pytest.approx(result.best.test_score - result.baseline.test_score)
    lo, hi = result.lift_ci95
    assert lo <= result.lift <= hi
    assert 0 < result.p_value <= 1


def test_grid_sampler_is_exhaustive_and_finds_the_best(tmp_path):
    spec_search = {
        "instructions": {"variants": ["EXPERT: decide the sentiment."]},
        "few_shot": {"max_k": 2, "strategies": ["random"], "pool_seeds": 1},
    }
    result, _, _ = search(tmp_path, RunOptions(sampler="grid", seed=0, parallel=3, max_trials=50), search=spec_search)
    # 2 instructions x k in 0..2 x 1 strategy x 1 seed x 2 orders = 12 grid points, plus the enqueued
    # baseline (trial 0), which the grid visits again as a duplicate that costs no call
    assert result.trials == 13 and result.stopped_by == "grid_exhausted"
    # distinct configurations: 2 instructions x (k=0, k=1, k=2 drawn, k=2 reversed); order is moot below 2
    assert len(result.leaderboard) == 8
    assert result.best.validation_score == 1.0


def test_same_seed_gives_the_same_sequence_of_trials(tmp_path):
    def sequence(sub):
        d = tmp_path / sub
        d.mkdir()
        result, _, run = search(d, RunOptions(seed=7, parallel=2, max_trials=10), cache_dir="../shared-cache")
        return [c.trial for c in result.leaderboard], [
            (c.trial, c.description) for c in sorted(result.leaderboard, key=lambda c: c.trial)
        ]

    assert sequence("a")[1] == sequence("b")[1]


def test_call_budget_stops_the_search_before_sending_and_covers_the_verdict(tmp_path):
    # 12 validation rows per trial, 12 test rows; top_k=1 -> the verdict (baseline, winner) needs up to 24
    # calls. 70 calls leave 46 for the search: 3 full trials (36) and a fourth stopped after 10 calls.
    result, backend, _ = search(tmp_path, RunOptions(seed=0, parallel=1, max_trials=30, max_calls=70, top_k=1))
    assert result.stopped_by == "budget"
    assert len(backend.calls) <= 70
    assert result.model_calls == len(backend.calls)
    assert result.failed_trials == 1
    assert sum(c.model_calls for c in result.leaderboard) <= 46  # the search's share of the budget


def test_a_budget_too_small_for_the_verdict_is_bad_input(tmp_path):
    from promptopt.errors import InputError

    with pytest.raises(InputError, match="budget.model_calls"):
        search(tmp_path, RunOptions(seed=0, max_calls=20, top_k=1))


def test_duplicate_configurations_cost_nothing(tmp_path):
    spec_search = {
        "instructions": {"variants": []},
        "few_shot": {"max_k": 1, "strategies": ["random"], "pool_seeds": 1},
    }
    result, backend, _ = search(tmp_path, RunOptions(seed=0, parallel=1, max_trials=8, top_k=1), search=spec_search)
    # k=0, and k=1 in either order (the same single example): 2 distinct configurations, 8 trials
    assert result.trials == 8
    sent = [c.model_dump_json() for c in backend.calls]
    assert len(sent) == len(set(sent)), "a request was sent twice"
    assert len(sent) <= 2 * 12 + 2 * 12  # two configs on validation, at most two on test


def test_a_designed_start_tries_the_spec_with_the_most_examples_right_after_the_baseline(tmp_path):
    def first_trials(sub, start):
        (tmp_path / sub).mkdir()
        result, _, _ = search(tmp_path / sub, RunOptions(seed=0, start=start, parallel=1, max_trials=4))
        return result, {c.trial: c.config for c in result.leaderboard}

    designed, configs = first_trials("designed", "designed")
    assert configs[1]["messages"][0]["content"] == "Label it."  # the spec's own instruction...
    assert sorted(e["output"] for e in configs[1]["examples"]) == ["negative", "positive"]  # ...every label shown
    assert designed.trials == 4
    plain, configs = first_trials("plain", "baseline")
    assert plain.trials == 4
    assert not (
        configs.get(1, {}).get("messages", [{}])[0].get("content") == "Label it." and len(configs[1]["examples"]) == 2
    ), "without a designed start trial 1 is the sampler's"


def test_the_result_and_a_resumed_budget_count_every_call_proposals_included(tmp_path):
    """Proposals are paid outside any eval: the run records them with its space, so the result's model_calls
    is every call that reached the model, and a resumed run's budget starts from them."""

    def reply(request):
        if request.messages[-1]["content"].count("\n") > 3:  # the proposer's prompt, not a review
            return "EXPERT: decide the sentiment of the review."
        return known_best(request)

    spec_search = {"instructions": {"propose": 2}, "few_shot": {"max_k": 1, "strategies": ["random"], "pool_seeds": 1}}
    result, backend, run = search(
        tmp_path,
        RunOptions(seed=0, max_trials=3, top_k=1, promote=False),
        backend=ScriptedBackend(reply),
        search=spec_search,
    )
    proposal_calls = [c for c in backend.calls if c.messages[-1]["content"].count("\n") > 3]
    assert proposal_calls and result.model_calls == len(backend.calls)
    assert run.store.run_usage(result.run_id)[0] == len(backend.calls)
    assert run.store.get_run(result.run_id).space is not None
