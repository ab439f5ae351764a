"""Multi-objective mode (`--objective score,cost` and `score,latency`) on a fake backend whose trade-off is
known by construction: the returned front is exactly the non-dominated set of evaluated configurations."""

import asyncio
import json
import re
from dataclasses import dataclass

import diskcache
import pytest
from rich.console import Console
from typer.testing import CliRunner

from promptopt.cache import DiskResponseCache
from promptopt.cli._run import leaderboard_table
from promptopt.cli.app import app
from promptopt.engine import EvalSummary, RowResult, Services
from promptopt.errors import EvalFailed
from promptopt.models import ScriptedBackend
from promptopt.models._base import ModelRequest, ModelResponse
from promptopt.reports import build_run_report
from promptopt.reports._figures import run_figures
from promptopt.search import RunOptions, SearchRun, TrialFinished, TrialOutcome, TrialStatus
from promptopt.store import get_store
from tests.search.helpers import SPEC, loaded_and_data, truth, write_spec

# model: (dollars a call, seconds a call, how it answers). "dull" answers like "cheap", costs more and is slower;
# "twin" costs (and takes) what "mid" does and answers like "cheap": both are dominated on either objective.
# "slow" answers like "mid" at half its price but is the slowest: it beats "mid" on cost and loses on latency.
MODELS = {
    "fake/cheap": (0.001, 0.10, "negative"),  # always "negative": right on the negative half
    "fake/mid": (0.004, 0.20, "mostly"),  # right except on every fourth case
    "fake/pricey": (0.010, 0.50, "right"),  # always right
    "fake/dull": (0.006, 0.30, "negative"),
    "fake/twin": (0.004, 0.20, "negative"),
    "fake/slow": (0.002, 0.60, "mostly"),
}
FRONTS = {"cost": {"fake/cheap", "fake/slow", "fake/pricey"}, "latency": {"fake/cheap", "fake/mid", "fake/pricey"}}


def answer(request: ModelRequest) -> str:
    text = request.messages[-1]["content"]
    how = MODELS[request.model][2]
    wrong = "negative" if truth(text) == "positive" else "positive"
    if how == "negative":
        return "negative"
    return wrong if how == "mostly" and int(text.split()[-1]) % 4 == 3 else truth(text)


@dataclass
class PricedBackend(ScriptedBackend):
    """Price and latency per model (reported, not slept), so that cost and latency are known by construction."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        response = await super().complete(request)
        return response.model_copy(
            update={"cost_usd": self.estimate_cost(request, 0), "latency_s": MODELS[request.model][1]}
        )

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return MODELS[request.model][0]


SEARCH = {"models": list(MODELS)}  # the only dimension: 6 configurations, all visited by the grid


def spec_path(tmp_path):
    return write_spec(tmp_path, task={**SPEC["task"], "model": "fake/cheap"}, search=SEARCH)


def run_search(tmp_path, objectives, cache="cache", on_event=None):
    loaded, dataset = loaded_and_data(spec_path(tmp_path))
    options = RunOptions(
        sampler="grid", seed=0, parallel=2, objectives=objectives, max_trials=20, top_k=1, promote=False
    )
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=options,
        **({"on_event": on_event} if on_event else {}),
        services=Services(
            backend=PricedBackend(answer),
            cache=DiskResponseCache(tmp_path / cache),
            records=get_store(f"sqlite:///{tmp_path / 's.db'}"),
        ),
    )
    return asyncio.run(run.run())


def second(objective: str):
    """A candidate's figure for ``objective``: what its call costs or takes per row, cached or not."""
    return (lambda c: c.cost_per_row_usd) if objective == "cost" else (lambda c: c.latency_per_row_s)


def non_dominated(cands, minimised):
    """The candidates no other candidate beats on one objective without losing on the other."""

    def dominates(a, b):
        return (
            a.validation_score >= b.validation_score
            and minimised(a) <= minimised(b)
            and (a.validation_score > b.validation_score or minimised(a) < minimised(b))
        )

    return {c.trial for c in cands if not any(dominates(o, c) for o in cands if o is not c)}


@pytest.mark.parametrize("objective", ["cost", "latency"])
def test_the_front_is_exactly_the_non_dominated_configurations(tmp_path, objective):
    result = run_search(tmp_path, ("score", objective))
    model_of = {c.trial: c.config["model"] for c in result.leaderboard}
    assert sorted(model_of.values()) == sorted(MODELS)  # every configuration was evaluated once
    scores = {model_of[c.trial]: c.validation_score for c in result.leaderboard}
    # the construction holds on this validation split
    assert scores["fake/cheap"] < scores["fake/mid"] < scores["fake/pricey"] == 1.0
    assert scores["fake/dull"] == scores["fake/twin"] == scores["fake/cheap"]
    assert scores["fake/slow"] == scores["fake/mid"]
    validation_rows = len(loaded_and_data(spec_path(tmp_path))[1].validation)
    for c in result.leaderboard:
        price, latency, _ = MODELS[c.config["model"]]
        assert second(objective)(c) == pytest.approx(price if objective == "cost" else latency)
        # a cold run paid every call: what it paid is the same figures, in total and on average
        assert (c.cost_usd, c.mean_latency_s) == (pytest.approx(price * validation_rows), pytest.approx(latency))

    front = {c.trial for c in result.pareto}
    assert front == non_dominated(result.leaderboard, second(objective))
    assert {model_of[t] for t in front} == FRONTS[objective]
    assert len(result.pareto) == len(front)  # each configuration once (the grid's duplicate baseline is not)
    assert result.best.config["model"] == "fake/pricey"


def test_single_objective_runs_return_no_front(tmp_path):
    assert run_search(tmp_path, ("score",)).pareto == ()


def cli_run(tmp_path, objective, store):
    """``optimize run --json`` on the grid, into ``store`` (a file name under ``tmp_path``), with one cache."""
    out = CliRunner().invoke(
        app,
        [
            "run",
            str(spec_path(tmp_path)),
            "--objective",
            f"score,{objective}",
            "--sampler",
            "grid",
            "--executor",
            "local",
            "--top-k",
            "1",
            "--no-promote",
            "--json",
            "--store",
            f"sqlite:///{tmp_path / store}",
            "--cache",
            str(tmp_path / "c"),
        ],
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


@pytest.mark.parametrize("objective", ["cost", "latency"])
def test_the_cli_json_carries_the_front_and_what_each_candidate_costs_and_takes(tmp_path, monkeypatch, objective):
    """The same front cold and warm; paid figures are what the run spent (nothing, warm), per-row figures what
    the configuration's call costs and takes (the objectives), cold or warm."""
    monkeypatch.setattr("promptopt.models.get_backend", lambda: PricedBackend(answer))
    cold, warm = cli_run(tmp_path, objective, "a.db"), cli_run(tmp_path, objective, "b.db")
    assert warm["model_calls"] == 0 and warm["cost_usd"] == 0.0  # every call came from the cache
    for data, paid in ((cold, True), (warm, False)):
        assert {c["config"]["model"] for c in data["pareto"]} == FRONTS[objective]
        by_model = {c["config"]["model"]: c for c in data["leaderboard"]}
        assert set(by_model) == set(MODELS)
        for c in data["pareto"]:
            assert c == by_model[c["config"]["model"]]  # the same candidate, with its score and cost
        for model, c in by_model.items():
            price, latency, _ = MODELS[model]
            assert (c["cost_per_row_usd"], c["latency_per_row_s"]) == (pytest.approx(price), pytest.approx(latency))
            assert c["validation_score"] is not None
            if paid:
                assert c["cost_usd"] > 0 and c["mean_latency_s"] == pytest.approx(latency)
            else:  # a cached response is free and instant for the run that reads it
                assert (c["cost_usd"], c["mean_latency_s"]) == (0.0, None)
        assert data["best"]["config"]["model"] == "fake/pricey"


def models(cands):
    return {c.config["model"] for c in cands}


def strip_cache(directory, key):
    """Rewrite every entry as a writer that did not keep ``key`` (``cost_usd`` or ``latency_s``) left it."""
    with diskcache.Cache(str(directory)) as raw:
        for k in list(raw):
            raw[k] = json.dumps({f: v for f, v in json.loads(raw[k]).items() if f != key})


def cold_then_warm(tmp_path, first, then, *, strip=None, on_event=None):
    """Run ``first`` on a new store and cache, then ``then`` on another new store and the same cache."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cold = run_search(tmp_path / "a", first, cache="../cache")
    if strip:
        strip_cache(tmp_path / "cache", strip)
    return cold, run_search(tmp_path / "b", then, cache="../cache", on_event=on_event)


@pytest.mark.parametrize("first", ["same", "score only"])
@pytest.mark.parametrize("objective", ["cost", "latency"])
def test_a_warm_cache_does_not_change_the_front(tmp_path, objective, first):
    """The objectives are what a configuration costs and takes when it runs, not what this run paid: a second
    run on the same cache (after the same command, or after a score-only run) pays nothing and finds the same
    front."""
    cold, warm = cold_then_warm(tmp_path, ("score", objective) if first == "same" else ("score",), ("score", objective))
    assert cold.model_calls > 0 and cold.cost_usd > 0
    assert (warm.model_calls, warm.cost_usd) == (0, 0.0)  # every call was a hit: free, as the cache promises
    assert models(warm.pareto) == FRONTS[objective]
    if first == "same":
        assert models(cold.pareto) == FRONTS[objective]


def test_entries_without_their_cost_give_the_same_front_from_the_backend_prices(tmp_path):
    _, warm = cold_then_warm(tmp_path, ("score",), ("score", "cost"), strip="cost_usd")
    assert warm.model_calls == 0 and models(warm.pareto) == FRONTS["cost"]


def test_entries_without_their_latency_fail_the_trials_of_a_latency_front(tmp_path):
    """An unknown latency is no latency: never told as 0 (every configuration would look instant)."""
    events = []
    with pytest.raises(EvalFailed, match="no trial completed"):
        cold_then_warm(tmp_path, ("score",), ("score", "latency"), strip="latency_s", on_event=events.append)
    trials = [e for e in events if isinstance(e, TrialFinished)]
    assert trials and all(t.status is TrialStatus.FAILED for t in trials)
    assert all("no row has a known latency" in t.error and "--no-cache" in t.error for t in trials)


def test_a_trial_without_a_value_for_an_objective_is_never_told():
    summary = EvalSummary.from_rows(
        [RowResult(case_id="c", input={}, output="x", objective=1.0, cache_hit=True, call_cost_usd=0.01)],
        [],
        model_calls=0,
        wall_s=0.0,
    )
    outcome = TrialOutcome(number=3, state=TrialStatus.COMPLETE, config_hash="h", summary=summary)
    assert outcome.values(("score", "cost")) == [1.0, 0.01]
    assert outcome.missing(("score", "latency")) == ["latency"]
    with pytest.raises(ValueError, match="trial 3 has no value for latency"):
        outcome.values(("score", "latency"))


def front_drawn(report):
    """The trial numbers the report's Pareto chart draws as its front (Optuna's "Best Trial" trace), and the
    chart's axis titles."""
    fig = run_figures(report)["pareto"]
    best = [t for t in fig.data if "Best Trial" in t.hovertemplate]
    numbers = {json.loads(text.replace("<br>", "\n"))["number"] for t in best for text in t.text}
    return numbers, (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text)


@pytest.mark.parametrize("objective", ["cost", "latency", None])
def test_a_warm_runs_report_flags_and_draws_the_runs_own_front(tmp_path, objective):
    """The report's front is the run's: validation score against the run's second objective per row (cost for
    a single-objective run), what each configuration's call costs or takes whether or not this run paid it."""
    objectives = ("score", objective) if objective else ("score",)
    _, warm = cold_then_warm(tmp_path, objectives, objectives)
    report = build_run_report(get_store(f"sqlite:///{tmp_path / 'b' / 's.db'}"), warm.run_id)
    flagged = {r.trial for r in report.leaderboard if r.pareto}
    assert {r.model for r in report.leaderboard if r.pareto} == FRONTS[objective or "cost"]
    if objective:
        assert flagged == {c.trial for c in warm.pareto}
    per_row = {"cost": "cost per row (USD)", "latency": "latency per row (s)"}[objective or "cost"]
    assert front_drawn(report) == (flagged, ("validation score", per_row))
    for row in report.leaderboard:
        price, latency, _ = MODELS[row.model]
        assert (row.cost_usd, row.mean_latency_s, row.model_calls) == (0.0, None, 0)  # this run paid nothing
        assert (row.cost_per_row_usd, row.latency_per_row_s) == (pytest.approx(price), pytest.approx(latency))

    console = Console(width=250, record=True)
    console.print(leaderboard_table(warm))
    table = console.export_text()
    assert "cost $/row" in table and "latency s/row" in table and "paid $" in table
    marked = {int(n) for n in re.findall(r"│\s*(\d+)(?: \(baseline\))? \(pareto\)", table)}
    assert marked == {c.trial for c in warm.pareto}


def test_a_result_recorded_before_the_per_row_figures_gets_them_from_its_rows(tmp_path):
    result = run_search(tmp_path, ("score", "cost"))
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    old = result.model_dump(mode="json")
    for c in (old["baseline"], old["best"], *old["leaderboard"], *old["pareto"]):
        del c["cost_per_row_usd"], c["latency_per_row_s"]
    store.finish_run(result.run_id, status="finished", result=old)
    report = build_run_report(store, result.run_id)
    assert {r.trial for r in report.leaderboard if r.pareto} == {c.trial for c in result.pareto}
    for row in report.leaderboard:
        price, latency, _ = MODELS[row.model]
        assert (row.cost_per_row_usd, row.latency_per_row_s) == (pytest.approx(price), pytest.approx(latency))
