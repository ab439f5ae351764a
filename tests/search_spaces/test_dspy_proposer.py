"""Instruction proposers on a scripted fake backend: DSPy's proposer (and, for the contract every proposer
keeps, the grounded one beside it): calls through our ``call`` with the proposer model and distinct repeat
indexes, the cache, budget refusals, malformed replies, and a search with ``proposer: dspy`` end to end."""

import asyncio
import subprocess
import sys
import typing

import pytest

from promptopt.cache import DiskResponseCache
from promptopt.engine import Evaluator, LocalBudget, Services
from promptopt.errors import BudgetExceeded, InputError
from promptopt.models import ScriptedBackend
from promptopt.models._base import ModelRequest, ModelResponse
from promptopt.search import RunOptions, SearchRun
from promptopt.search_spaces import PROPOSERS, DspyProposer, SearchSpace, make_proposer
from promptopt.spec import InstructionSearch, load_spec
from promptopt.store import get_store
from tests.search.helpers import known_best, loaded_and_data, write_spec

LABELS = ("positive", "negative")
EXAMPLES = [({"text": "a wonderful film"}, "positive"), ({"text": "a dull film"}, "negative")]
FAILURES = [({"text": "not bad at all"}, "negative", "positive")]


def dspy_reply(instruction: str) -> str:
    return f"[[ ## proposed_instruction ## ]]\n{instruction}\n\n[[ ## completed ## ]]"


def is_dspy_request(request: ModelRequest) -> bool:
    return "[[ ## proposed_instruction ## ]]" in request.messages[0]["content"]


def proposal(request: ModelRequest) -> str:
    """A different instruction per sample (seed), in the form the asking proposer expects."""
    text = f"Wording {request.params['seed']}: decide whether the review is positive or negative."
    return dspy_reply(text) if is_dspy_request(request) else text


def propose(proposer, call, n=3):
    return asyncio.run(
        proposer.propose(instruction="Label it.", examples=EXAMPLES, failures=FAILURES, labels=LABELS, n=n, call=call)
    )


def through(evaluator: Evaluator):
    async def call(request: ModelRequest, repeat: int) -> ModelResponse:
        return (await evaluator.complete(request, repeat))[0]

    return call


@pytest.mark.parametrize("name", ["dspy", "grounded"])
def test_calls_reach_call_with_the_proposer_model_and_distinct_repeats(name):
    seen: list[tuple[ModelRequest, int]] = []

    async def call(request: ModelRequest, repeat: int) -> ModelResponse:
        seen.append((request, repeat))
        return ModelResponse(text=proposal(request))

    found = propose(make_proposer(name, "fake/proposer"), call)
    assert found == [f"Wording {i}: decide whether the review is positive or negative." for i in range(3)]
    assert [r for _, r in seen] == [0, 1, 2]
    assert {req.model for req, _ in seen} == {"fake/proposer"}
    assert [req.params["seed"] for req, _ in seen] == [0, 1, 2] and seen[0][0].params["temperature"] > 0
    prompt = "\n".join(m["content"] for m in seen[0][0].messages)
    # grounded on the instruction, the train examples and the baseline's mistakes
    assert "Label it." in prompt and "a wonderful film" in prompt and "not bad at all" in prompt
    assert is_dspy_request(seen[0][0]) == (name == "dspy")


@pytest.mark.parametrize("name", ["dspy", "grounded"])
def test_a_repeated_run_is_served_by_the_cache(tmp_path, name):
    backend = ScriptedBackend(proposal)
    first = propose(
        make_proposer(name, "fake/proposer"),
        through(Evaluator(Services(backend=backend, cache=DiskResponseCache(tmp_path)))),
    )
    assert len(backend.calls) == 3
    again = propose(
        make_proposer(name, "fake/proposer"),
        through(Evaluator(Services(backend=backend, cache=DiskResponseCache(tmp_path)))),
    )
    assert again == first and len(backend.calls) == 3


@pytest.mark.parametrize("name", ["dspy", "grounded"])
def test_a_budget_refusal_propagates(name):
    backend = ScriptedBackend(proposal)
    evaluator = Evaluator(Services(backend=backend, budget=LocalBudget(model_calls=1)))
    with pytest.raises(BudgetExceeded, match="model-call budget"):
        propose(make_proposer(name, "fake/proposer"), through(evaluator))
    assert len(backend.calls) == 1


def test_dspy_never_sees_the_model_name():
    # DSPy refuses temperature 0.9 for a model it knows as an OpenAI reasoning model; ours decides the model
    backend = ScriptedBackend(proposal)
    found = propose(DspyProposer("openai/gpt-5-mini"), through(Evaluator(Services(backend=backend))), n=1)
    assert len(found) == 1 and [r.model for r in backend.calls] == ["openai/gpt-5-mini"]


def test_malformed_replies_are_counted_and_cleaned_or_skipped():
    replies = {
        0: "",
        1: "ok",
        2: "Proposed instruction: Judge the review's sentiment carefully.",
        3: dspy_reply("Read the review, then answer positive or negative."),
    }
    backend = ScriptedBackend(lambda request: replies[request.params["seed"]])
    proposer = DspyProposer("fake/proposer")
    found = propose(proposer, through(Evaluator(Services(backend=backend))), n=2)
    # 0 and 1 cannot be parsed nor used; 2 cannot be parsed, its raw text can (labels appended); 3 parses
    assert found == [
        "Judge the review's sentiment carefully. Answer with one word: positive or negative.",
        "Read the review, then answer positive or negative.",
    ]
    assert proposer.parse_errors == 3
    assert len(backend.calls) == 4


def test_a_sync_dspy_call_is_bridged_to_the_loop_from_a_worker_thread():
    import dspy

    from promptopt.search_spaces._dspy_proposer import _dspy_lm

    seen = []

    async def call(request: ModelRequest, repeat: int) -> ModelResponse:
        seen.append((asyncio.get_running_loop(), request.model, repeat))
        return ModelResponse(text="[[ ## answer ## ]]\nfour\n\n[[ ## completed ## ]]")

    async def main():
        loop = asyncio.get_running_loop()
        lm, _ = _dspy_lm(call, "fake/proposer", 7, loop, temperature=0.0, max_tokens=20)
        predict = dspy.Predict("question -> answer")

        def sync_program():
            with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
                return predict(question="2 + 2?").answer

        answer = await asyncio.to_thread(sync_program)
        with pytest.raises(Exception, match="deadlock"):  # on the loop's own thread it refuses, never hangs
            sync_program()
        return loop, answer

    loop, answer = asyncio.run(main())
    assert answer == "four"
    assert seen == [(loop, "fake/proposer", 7)]


def test_importing_the_package_does_not_import_dspy():
    code = "import sys, promptopt.search, promptopt.search_spaces, promptopt.cli.app; sys.exit('dspy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_the_spec_names_a_proposer_or_says_which_exist(tmp_path):
    assert typing.get_args(InstructionSearch.model_fields["proposer"].annotation) == PROPOSERS
    search = {"instructions": {"propose": 1, "proposer": "dspy"}}
    assert load_spec(write_spec(tmp_path, search=search)).spec.search.instructions.proposer == "dspy"
    search["instructions"]["proposer"] = "mipro"
    with pytest.raises(InputError) as info:
        load_spec(write_spec(tmp_path, search=search))
    assert info.value.field == "search.instructions.proposer"
    assert "grounded" in info.value.message and "dspy" in info.value.message and "'mipro'" in info.value.message


def test_a_search_with_the_dspy_proposer_tries_its_instruction(tmp_path):
    expert = "EXPERT: decide whether the review is positive or negative."
    backend = ScriptedBackend(lambda r: dspy_reply(expert) if is_dspy_request(r) else known_best(r))
    search = {"instructions": {"propose": 1, "proposer": "dspy", "proposer_model": "fake/proposer"}}
    loaded, dataset = loaded_and_data(write_spec(tmp_path, search=search))
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=RunOptions(sampler="grid", seed=0, max_trials=10, top_k=1),
        services=Services(
            backend=backend,
            cache=DiskResponseCache(tmp_path / "cache"),
            records=get_store(f"sqlite:///{tmp_path / 's.db'}"),
        ),
    )
    result = asyncio.run(run.run())
    assert [c.model for c in backend.calls if c.model == "fake/proposer"] == ["fake/proposer"]
    (dimension,) = SearchSpace.from_json(run.store.get_run(result.run_id).space).dimensions
    assert dict(zip(dimension.candidates, dimension.sources, strict=True)) == {"Label it.": "spec", expert: "dspy"}
    assert {c.config["messages"][0]["content"] for c in result.leaderboard} == {"Label it.", expert}
    assert result.best.config["messages"][0]["content"] == expert  # right on half the rows; the spec's on a quarter
