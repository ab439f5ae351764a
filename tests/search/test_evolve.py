"""The evolve search: demo sets and instructions as factors, one factor moved at a time from the incumbent,
and instructions written during the run from a parent's mistakes on train cases."""

from __future__ import annotations

import asyncio

import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from promptopt.cache import NullCache
from promptopt.config import Example, PromptConfig
from promptopt.engine import ExperimentRole, Services
from promptopt.models import ScriptedBackend
from promptopt.search import InstructionsEvolved, RunOptions, SearchRun
from promptopt.search._evolve import Scored, anchor, incumbent, main_effects, next_points, pareto_weights
from promptopt.search_spaces import (
    ConstrainedDimension,
    DemoSetDimension,
    InstructionDimension,
    RejectedProposal,
    SearchSpace,
    demo_sets,
    dimension_from_json,
    reflect_on_cases,
)
from promptopt.search_spaces._operators import MAX_CHARS
from promptopt.store import get_store
from tests.search.helpers import loaded_and_data, truth, write_spec

LABELS = ("positive", "negative")


def _space(instructions: int = 3, sets: int = 3) -> SearchSpace:
    examples = tuple(Example(input={"text": f"e{i}"}, output=LABELS[i % 2]) for i in range(2 * sets))
    demo = DemoSetDimension(
        ((),) + tuple(examples[2 * i : 2 * i + 2] for i in range(sets - 1)),
        ("none",) + tuple(f"balanced:{i}" for i in range(sets - 1)),
    )
    words = tuple(f"Instruction {i}." for i in range(instructions))
    dims = (InstructionDimension(words, growing=True), demo, ConstrainedDimension((False, True)))
    base = PromptConfig.model_validate(
        {
            "model": "fake/m",
            "messages": [{"role": "system", "content": "Instruction 0."}, {"role": "user", "content": "{{text}}"}],
        }
    )
    return SearchSpace(base, dims)


def _scored(space: SearchSpace, rows: list[tuple[dict, float]]) -> tuple[list[Scored], set[str]]:
    trials = [Scored(i, {**space.baseline(), **p}, s, None) for i, (p, s) in enumerate(rows)]
    return trials, {space.config(t.params).hash for t in trials}


# -- the plan ---------------------------------------------------------------------------------------------------
def test_moves_change_one_factor_of_the_incumbent_and_the_factors_take_turns():
    space = _space()
    design = {"instruction": 0, "demo_set": 1, "constrained": True}
    trials, seen = _scored(space, [({}, 0.2), (design, 0.6)])
    points = next_points(space, trials, seen, 3)
    # two trials so far: the turn is the third factor's (constrained), then the instruction's, then the demos'
    assert points == [
        {**design, "constrained": False},
        {**design, "instruction": 1},
        {**design, "demo_set": 2},
    ]


def test_a_better_trial_becomes_the_incumbent_and_a_tie_keeps_the_earlier():
    space = _space()
    trials, _ = _scored(space, [({}, 0.5), ({"instruction": 1}, 0.5), ({"instruction": 2}, 0.7)])
    assert incumbent(trials).number == 2
    assert incumbent(trials[:2]).number == 0


def test_the_anchor_pools_every_trial_so_one_lucky_score_does_not_flip_a_factor():
    space = _space()
    rows = [
        ({"instruction": 0, "demo_set": 1, "constrained": True}, 0.60),
        ({"instruction": 1, "demo_set": 1, "constrained": True}, 0.60),
        ({"instruction": 2, "demo_set": 1, "constrained": True}, 0.60),
        ({"instruction": 0, "demo_set": 1, "constrained": False}, 0.63),  # one lucky eval: the best trial
        ({"instruction": 1, "demo_set": 1, "constrained": False}, 0.40),
        ({"instruction": 2, "demo_set": 1, "constrained": False}, 0.40),
    ]
    trials, seen = _scored(space, rows)
    assert incumbent(trials).params["constrained"] is False
    effects = main_effects(space, trials)
    assert effects["constrained"][True] > effects["constrained"][False]
    assert set(effects["demo_set"]) == {1}  # untried levels have no effect to read
    assert anchor(space, trials) == {"instruction": 0, "demo_set": 1, "constrained": True}


def test_a_new_anchor_is_evaluated_before_any_move():
    space = _space()
    rows = [
        ({"instruction": 0, "demo_set": 0, "constrained": False}, 0.2),
        ({"instruction": 1, "demo_set": 0, "constrained": False}, 0.5),
        ({"instruction": 0, "demo_set": 1, "constrained": False}, 0.5),
    ]
    trials, seen = _scored(space, rows)
    assert next_points(space, trials, seen, 1) == [{"instruction": 1, "demo_set": 1, "constrained": False}]


def test_no_point_is_planned_when_every_neighbour_was_evaluated():
    space = SearchSpace(_space().base, (ConstrainedDimension((False, True)),))
    trials, seen = _scored(space, [({"constrained": False}, 0.5), ({"constrained": True}, 0.4)])
    assert next_points(space, trials, seen, 2) == []


def test_pareto_weights_leave_out_dominated_trials_and_count_the_cases_each_is_best_on():
    per_case = {
        0: {"a": 1.0, "b": 1.0, "c": 0.0},
        1: {"a": 1.0, "b": 0.0, "c": 0.0},  # dominated by 0
        2: {"a": 0.0, "b": 0.0, "c": 1.0},
    }
    assert pareto_weights(per_case) == {0: 2, 2: 1}
    assert pareto_weights({0: {"a": 0.0}}) == {}


# -- the dimensions -----------------------------------------------------------------------------------------------
def test_a_growing_instruction_is_an_integer_whose_range_grows_and_round_trips_with_its_lineage():
    dim = InstructionDimension(("Spec.", "Edit."), ("spec", "operator:format"), growing=True)
    assert dim.distributions()["instruction"] == IntDistribution(0, 1)
    grown = dim.grown(
        [("Child.", "reflect:cases", 1), ("Edit.", "reflect:cases", 1)],
        [RejectedProposal("{{x}}", "reflect:m", "has a placeholder", 1)],
    )
    assert grown.candidates == ("Spec.", "Edit.", "Child.") and grown.parents == (None, None, 1)
    assert grown.distributions()["instruction"] == IntDistribution(0, 2)
    assert [r.reason for r in grown.rejected] == ["has a placeholder", "same as another candidate"]
    assert grown.generations == 1
    again = dimension_from_json(grown.to_json())
    assert again == grown and again.parents == grown.parents and again.rejected == grown.rejected


def test_a_fixed_instruction_keeps_its_categorical_and_an_old_kept_space_still_loads():
    old = {"kind": "instruction", "candidates": ["A.", "B."], "sources": ["spec", "variant"]}
    dim = dimension_from_json(old)
    assert isinstance(dim, InstructionDimension) and dim.parents == (None, None) and not dim.growing
    assert dim.distributions()["instruction"] == CategoricalDistribution([0, 1])


def test_demo_sets_start_with_none_are_distinct_and_round_trip():
    pool = tuple(Example(input={"t": str(i)}, output=LABELS[i % 2]) for i in range(8))
    sets, sources = demo_sets({"balanced": pool, "bootstrapped": pool[:4], "random": pool}, 2, 2)
    assert sets[0] == () and sources[0] == "none"
    assert sources[1] == "balanced:0" and {e.output for e in sets[1]} == set(LABELS)
    assert all(a != b for i, a in enumerate(sets) for b in sets[i + 1 :]) and all(len(s) == 2 for s in sets[1:])
    dim = DemoSetDimension(sets, sources)
    assert dimension_from_json(dim.to_json()) == dim
    base = _space().base
    assert dim.apply(base, {"demo_set": 0}) == base
    assert dim.apply(base, {"demo_set": 1}).examples == sets[1]
    with pytest.raises(ValueError, match="'none' first"):
        DemoSetDimension(sets[1:], sources[1:])


def test_reflect_on_definitions_shows_the_mistakes_and_replaces_the_parents_definitions():
    import random

    from promptopt.data import Case
    from promptopt.search_spaces import reflect_on_definitions

    train = (
        Case(id="1", input={"text": "a fine film"}, expected="positive"),
        Case(id="2", input={"text": "dull"}, expected="negative"),
    )
    parent = (
        'Decide. The labels: positive (e.g. "x"); negative (e.g. "y"). Answer with exactly one of: positive, negative.'
    )
    child = reflect_on_definitions(
        parent, [({"text": "not bad at all"}, "negative", "positive")], train, LABELS, random.Random(0)
    )
    assert child == (
        'Decide. The labels: positive (e.g. "not bad at all"); negative (e.g. "dull"). '
        "Answer with exactly one of: positive, negative."
    )
    assert reflect_on_definitions("Decide.", [], (), LABELS, random.Random(0)) is None  # nothing to define with
    assert reflect_on_definitions("Decide.", [], train, None, random.Random(0)) is None


def test_reflect_on_cases_replaces_the_parents_hints_and_keeps_the_format_line_last():
    parent = 'Decide. Hard cases: "old" is positive. Answer with exactly one of: positive, negative.'
    failures = [({"text": "dull plot"}, "positive", "negative"), ({"text": "a gem"}, "negative", "positive")]
    child = reflect_on_cases(parent, failures, LABELS)
    assert child == (
        'Decide. Hard cases: "dull plot" is negative; "a gem" is positive. '
        "Answer with exactly one of: positive, negative."
    )
    many = [({"text": f"case number {i} " + "word " * 8}, "x", LABELS[i % 2]) for i in range(40)]
    assert len(reflect_on_cases(parent, many, LABELS) or "") <= MAX_CHARS
    assert reflect_on_cases(parent, [({"text": ""}, "x", "positive")], LABELS) is None


# -- a run ----------------------------------------------------------------------------------------------------------
def hard_case_backend() -> ScriptedBackend:
    """Right on every case with label definitions in the instruction ("The labels:", which only reflection
    writes here), on half with the answer-format line, on a
    quarter otherwise; the proposer model answers with a placeholder (a proposal the check must reject)."""

    def answer(request) -> str:
        system, text = request.messages[0]["content"], request.messages[-1]["content"]
        if system.startswith("You improve instructions"):
            return "Classify {{text}} as positive or negative."
        right = truth(text)
        wrong = "negative" if right == "positive" else "positive"
        i = int(text.split()[-1])
        if "The labels:" in system:
            return right
        if "Answer with exactly one of" in system:
            return right if i % 2 == 0 else wrong
        return right if i % 4 == 0 else wrong

    return ScriptedBackend(answer)


def evolve_run(tmp_path, *, trials: int = 8, proposer_model: str | None = "fake/proposer"):
    search = {
        "instructions": {"operators": ["format"], "proposer_model": proposer_model, "reflection_rows": 6},
        "few_shot": {"max_k": 2, "strategies": ["balanced"], "pool_seeds": 2},
    }
    loaded, dataset = loaded_and_data(write_spec(tmp_path, n=60, search=search, budget={"trials": trials}))
    backend = hard_case_backend()
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    events: list = []
    searching = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=RunOptions(sampler="evolve", seed=0, promote=False),
        services=Services(backend=backend, cache=NullCache(), records=store),
        on_event=events.append,
    )
    return asyncio.run(searching.run()), dataset, store, backend, events


def test_an_evolve_run_grows_instructions_from_train_mistakes_and_the_child_wins(tmp_path):
    result, dataset, store, backend, events = evolve_run(tmp_path)
    assert "The labels:" in result.best.config["messages"][0]["content"]
    assert result.best.validation_score == 1.0 and result.best.test_score == 1.0
    space = SearchSpace.from_json(store.get_run(result.run_id).space)
    dim = next(d for d in space.dimensions if isinstance(d, InstructionDimension))
    assert dim.growing and dim.generations >= 1
    children = [i for i, s in enumerate(dim.sources) if s == "reflect:definitions"]
    assert children and all(dim.parents[i] is not None and dim.parents[i] < i for i in children)
    assert any(isinstance(d, DemoSetDimension) for d in space.dimensions)
    evolved = [e for e in events if isinstance(e, InstructionsEvolved)]
    assert evolved and evolved[0].children


def test_reflection_reads_train_cases_only(tmp_path):
    result, dataset, store, _, _ = evolve_run(tmp_path)
    reflections = [e for e in store.list_experiments(run_id=result.run_id) if e.role is ExperimentRole.REFLECTION]
    assert reflections and all(e.trial_number is not None for e in reflections)
    train = {c.id for c in dataset.train.cases}
    for e in reflections:
        ids = {r.case_id for r in store.get_rows(e.id)}
        assert ids and ids <= train


def test_a_rejected_proposal_is_kept_with_its_reason_and_its_calls_are_counted(tmp_path):
    result, _, store, backend, _ = evolve_run(tmp_path)
    dim = next(
        d
        for d in SearchSpace.from_json(store.get_run(result.run_id).space).dimensions
        if isinstance(d, InstructionDimension)
    )
    refused = [r for r in dim.rejected if r.source == "reflect:fake/proposer"]
    assert refused and refused[0].reason == "has a placeholder" and refused[0].parent is not None
    assert not any("{{text}}" in c for c in dim.candidates)
    proposer_calls = sum(1 for r in backend.calls if r.model == "fake/proposer")
    assert proposer_calls == len(refused)
    assert result.model_calls == len(backend.calls)  # the proposer's calls are in the run's count


def test_without_a_proposer_model_no_model_writes_instructions(tmp_path):
    result, _, _, backend, _ = evolve_run(tmp_path, proposer_model=None)
    assert {r.model for r in backend.calls} == {"fake/m"}
    assert "The labels:" in result.best.config["messages"][0]["content"]


def test_the_proposer_keeps_what_it_left_out_with_the_reason():
    from promptopt.models import ModelResponse
    from promptopt.search_spaces import GroundedProposer

    answers = iter(["ok.", "Decide the sentiment of the review.", "Decide the sentiment of the review.", "{{x}} yes"])

    async def call(request, repeat):
        return ModelResponse(text=next(answers), prompt_tokens=1, completion_tokens=1)

    proposer = GroundedProposer("fake/m", attempts=2)
    found = asyncio.run(
        proposer.propose(instruction="Label it.", examples=[], failures=[], labels=LABELS, n=2, call=call)
    )
    assert found == ["Decide the sentiment of the review. Answer with one word: positive or negative."]
    assert [reason for _, reason in proposer.rejected] == [
        "too short (under 15 characters)",
        "same as another candidate",
        "has a placeholder",
    ]


def test_the_result_counts_the_pool_by_source_and_the_rejected_by_reason(tmp_path):
    result, _, _, _, _ = evolve_run(tmp_path)
    pool = result.instructions
    assert pool is not None and pool.generations >= 1
    assert (
        pool.sources["spec"] == 1 and pool.sources["operator:format"] == 1 and pool.sources["reflect:definitions"] >= 1
    )
    assert pool.candidates == sum(pool.sources.values())
    assert pool.rejected["has a placeholder"] >= 1
