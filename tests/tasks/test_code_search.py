"""Searching a code task: every prompt's dimensions at once, demos bootstrapped from the traces of right rows,
the winner a whole bundle."""

from __future__ import annotations

import asyncio

from promptopt.cache import DiskResponseCache
from promptopt.config import PipelineConfig, candidate_from_json
from promptopt.engine import Services
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, SearchRun
from promptopt.search_spaces import FewShotDimension, InstructionDimension, ScopedDimension, SearchSpace
from promptopt.store import get_store
from tests.tasks.helpers import loaded_and_data, two_step, write_task

SEARCH = {"few_shot": {"max_k": 2, "pool_seeds": 2}, "instructions": {"operators": ["format", "definitions"]}}


def search(tmp_path, *, options=None, **spec_search):
    loaded, dataset = loaded_and_data(write_task(tmp_path, **(spec_search or SEARCH)))
    backend = ScriptedBackend(two_step)
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=options or RunOptions(seed=0, parallel=2, sampler="random"),
        services=Services(backend=backend, cache=DiskResponseCache(tmp_path / "cache"), records=store),
    )
    return asyncio.run(run.run()), store


def test_the_search_varies_every_prompt_and_finds_the_bundle_that_is_right(tmp_path):
    result, store = search(tmp_path)
    space = SearchSpace.from_json(store.get_run(result.run_id).space)
    scoped = {(d.prompt, d.inner.kind) for d in space.dimensions if isinstance(d, ScopedDimension)}
    assert {("rewrite", "few_shot"), ("classify", "few_shot"), ("classify", "instruction")} <= scoped
    demos = next(
        d.inner
        for d in space.dimensions
        if isinstance(d, ScopedDimension) and d.prompt == "classify" and isinstance(d.inner, FewShotDimension)
    )
    # Bootstrapped from the trace: the classifier's own variables and answers in rows that ended right.
    pool = demos.pools["bootstrapped"]
    assert pool and all(set(ex.input) == {"text"} and ex.input["text"].startswith("short ") for ex in pool)
    instructions = next(
        d.inner for d in space.dimensions if isinstance(d.inner, InstructionDimension) and d.prompt == "classify"
    )
    defined = next(
        c for c, s in zip(instructions.candidates, instructions.sources, strict=True) if s == "operator:definitions"
    )
    assert '(e.g. "short ' in defined  # label definitions drawn from the classifier's inputs in right rows
    configs = [candidate_from_json(c.config) for c in result.leaderboard]
    assert all(isinstance(c, PipelineConfig) for c in configs)
    assert (
        len({c.prompt("rewrite").hash for c in configs}) > 1 and len({c.prompt("classify").hash for c in configs}) > 1
    )
    best = candidate_from_json(result.best.config)
    assert isinstance(best, PipelineConfig) and result.best.validation_score == 1.0
    assert len(best.prompt("classify").examples) == 2 or "EXPERT" in best.prompt("classify").instruction
    assert result.best.test_score == 1.0


def test_search_prompts_keeps_the_other_prompts_as_written(tmp_path):
    result, store = search(tmp_path, prompts=["classify"], **SEARCH)
    space = SearchSpace.from_json(store.get_run(result.run_id).space)
    assert {d.prompt for d in space.dimensions if isinstance(d, ScopedDimension)} == {"classify"}
    base = space.base
    assert isinstance(base, PipelineConfig)
    for c in result.leaderboard:
        assert candidate_from_json(c.config).prompt("rewrite") == base.prompt("rewrite")


def test_a_scoped_space_round_trips_and_applies_to_its_prompt_only(tmp_path):
    from promptopt.config import base_candidate
    from promptopt.spec import load_spec

    base = base_candidate(load_spec(write_task(tmp_path)))
    assert isinstance(base, PipelineConfig)
    dims = (ScopedDimension("classify", InstructionDimension(("Label it.", "EXPERT label."))),)
    space = SearchSpace(base, dims)
    assert space.distributions().keys() == {"classify.instruction"}
    changed = space.config({"classify.instruction": 1})
    assert changed.prompt("classify").instruction == "EXPERT label."
    assert changed.prompt("rewrite") == base.prompt("rewrite")
    assert SearchSpace.from_json(space.to_json()).config({"classify.instruction": 1}) == changed
    import pytest

    with pytest.raises(ValueError, match="name their prompt"):
        SearchSpace(base, (InstructionDimension(("a", "b")),))
    with pytest.raises(ValueError, match="'answer', which this task does not have"):
        SearchSpace(base, (ScopedDimension("answer", InstructionDimension(("a", "b"))),))


def test_the_report_shows_each_test_case_with_both_traces(tmp_path):
    from promptopt.reports import build_run_report, render_html, render_markdown

    result, store = search(tmp_path)
    report = build_run_report(store, result.run_id)
    assert report.case_diff is not None
    case = next(c for c in report.case_diff.cases if c.kind == "improved")
    assert [s.prompt for s in case.baseline_trace] == ["rewrite", "classify"] == [s.prompt for s in case.winner_trace]
    html = render_html(report)
    assert html.count('<details class="trace"><summary>trace: 2 calls</summary>') == 2 * report.case_diff.paired_cases
    assert "<b>classify</b>" in html and "short " in html
    markdown = render_markdown(report)
    assert f"rewrite → {case.winner_trace[0].output} · classify → " in markdown


def test_the_dry_run_and_the_verdicts_reserve_count_a_call_per_prompt(tmp_path):
    from promptopt.search import plan_run
    from promptopt.search._estimate import estimate_run

    loaded, dataset = loaded_and_data(write_task(tmp_path, **SEARCH))
    backend = ScriptedBackend(two_step)
    plan = plan_run(loaded, dataset, RunOptions(sampler="random", top_k=1, promote=False), backend)
    assert plan.verdict_calls == 2 * 2 * len(dataset.test)  # (baseline + top 1) x test rows x two prompts
    estimate = estimate_run(loaded, dataset, trials=4, top_k=1, backend=backend)
    assert estimate["calls_per_row"] == 2
    assert estimate["breakdown"]["search"] == 4 * len(dataset.validation) * 2


def needs_definitions(request) -> str:
    """rewrite as in ``two_step``; classify is right on every case only once its instruction defines the labels
    (a child of the evolve search), else on half of them whatever its examples."""
    system, text = request.messages[0]["content"], request.messages[-1]["content"]
    if system.startswith("Shorten"):
        return f"short {text.split()[-1]}"
    i = int(text.split()[-1])
    right = "positive" if i % 2 else "negative"
    return right if "The labels:" in system or i % 4 < 2 else ("negative" if right == "positive" else "positive")


def test_evolve_grows_each_prompts_instruction_in_turn_from_its_own_calls(tmp_path):
    from promptopt.reports import build_run_report, render_markdown
    from promptopt.search import InstructionsEvolved

    events = []
    spec_search = {**SEARCH, "instructions": {"operators": ["format"]}}  # definitions come from the search only
    loaded, dataset = loaded_and_data(write_task(tmp_path, **spec_search))
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=RunOptions(seed=0, parallel=1, sampler="evolve", max_trials=16, top_k=1, promote=False),
        services=Services(
            backend=ScriptedBackend(needs_definitions), cache=DiskResponseCache(tmp_path / "c"), records=store
        ),
        on_event=events.append,
    )
    result = asyncio.run(run.run())
    grown = [e for e in events if isinstance(e, InstructionsEvolved)]
    assert [e.prompt for e in grown][:2] in (["rewrite", "classify"], ["classify", "rewrite"])
    space = SearchSpace.from_json(store.get_run(result.run_id).space)
    pools = {d.prompt: d.inner for d in space.dimensions if isinstance(d.inner, InstructionDimension)}
    assert all(p.growing and p.generations >= 1 for p in pools.values())
    for pool in pools.values():
        children = [i for i, src in enumerate(pool.sources) if src.startswith("reflect:")]
        assert children and all(pool.parents[i] is not None for i in children)
    # The classifier's child defines its labels by the classifier's own inputs ("short <i>"), not the review.
    classify = pools["classify"]
    child = next(
        c for c, src in zip(classify.candidates, classify.sources, strict=True) if src == "reflect:definitions"
    )
    assert '(e.g. "short ' in child
    assert (
        result.best.validation_score == 1.0
        and "The labels:" in candidate_from_json(result.best.config).prompt("classify").instruction
    )
    report = build_run_report(store, result.run_id)
    assert {n.prompt for n in report.lineage} == {"rewrite", "classify"}
    assert "classify #" in render_markdown(report)
