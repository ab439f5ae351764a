"""Tasks as code: a spec's function calling named prompts, evaluated through the engine with every prompt call
traced; the spec's checks; the agent loop."""

from __future__ import annotations

import asyncio
import json

import pytest

from promptopt.cache import DiskResponseCache
from promptopt.config import PipelineConfig, base_candidate, candidate_from_json
from promptopt.engine import Services, evaluate_config
from promptopt.errors import InputError, ModelCallError
from promptopt.models import ModelResponse, ScriptedBackend
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.tasks import Span
from tests.tasks.helpers import PIPELINE, loaded_and_data, two_step, write_task


def evaluate(loaded, dataset, config=None, *, split="validation", **services):
    services.setdefault("backend", ScriptedBackend(two_step))
    config = config or base_candidate(loaded)
    return asyncio.run(evaluate_config(loaded, dataset, config, split=split, services=Services(**services)))


def test_each_row_runs_the_function_and_traces_every_prompt_call(tmp_path):
    loaded, dataset = loaded_and_data(write_task(tmp_path))
    backend = ScriptedBackend(two_step)
    result = evaluate(loaded, dataset, backend=backend)
    n = len(dataset.validation.cases)
    assert result.summary.model_calls == 2 * n and len(backend.calls) == 2 * n
    row = result.rows[0]
    assert [s.prompt for s in row.trace] == ["rewrite", "classify"]
    rewrite, classify = row.trace
    assert rewrite.input == {"text": row.input["text"]} and rewrite.model == "fake/m"
    assert rewrite.messages[-1] == {"role": "user", "content": row.input["text"]}
    assert classify.input == {"text": rewrite.output} and classify.model == "fake/judge"
    assert row.output == classify.parsed and row.parsed in ("positive", "negative")
    assert row.task_prompt_tokens == rewrite.prompt_tokens + classify.prompt_tokens
    # The classifier as written is right on the half of cases with i % 4 < 2, and on nothing else.
    right = [r.objective for r in result.rows if int(r.input["text"].split()[-1]) % 4 < 2]
    assert right and all(v == 1.0 for v in right)
    assert result.summary.objective == pytest.approx(len(right) / n)


def test_traces_are_stored_with_their_rows_and_a_rerun_is_served_by_the_cache(tmp_path):
    loaded, dataset = loaded_and_data(write_task(tmp_path))
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    cache = DiskResponseCache(tmp_path / "cache")
    first = evaluate(loaded, dataset, records=store, cache=cache)
    stored = store.get_rows(first.experiment_id)
    assert [r.trace for r in stored] == [r.trace for r in first.rows]
    assert all(isinstance(s, Span) for r in stored for s in r.trace or ())

    again = ScriptedBackend(two_step)
    fresh = get_store(f"sqlite:///{tmp_path / 's2.db'}")
    second = evaluate(loaded, dataset, records=fresh, cache=cache, backend=again)
    assert again.calls == [] and second.summary.model_calls == 0
    assert all(r.cache_hit and all(s.cache_hit for s in r.trace) for r in second.rows)
    assert [r.objective for r in second.rows] == [r.objective for r in first.rows]


def test_a_function_that_raises_fails_its_row_and_is_never_scored(tmp_path):
    source = PIPELINE.replace(
        "    return label.value",
        "    if input['text'].endswith('3'):\n        raise ValueError('no')\n    return label.value",
    )
    loaded, dataset = loaded_and_data(write_task(tmp_path, source=source))
    result = evaluate(loaded, dataset, split="train")
    failed = [r for r in result.rows if r.error]
    assert failed and all(r.input["text"].endswith("3") for r in failed)
    assert all("failed: ValueError: no" in r.error and r.objective is None for r in failed)
    assert all(len(r.trace) == 2 for r in failed)  # the calls made before the failure are kept
    assert result.summary.errors == len(failed)


def test_a_failed_model_call_names_its_prompt(tmp_path):
    def judge_down(request):
        if request.model == "fake/judge":
            return ModelCallError("invalid key", retryable=False, status=401)
        return two_step(request)

    loaded, dataset = loaded_and_data(write_task(tmp_path))
    from promptopt.spec import EvalSettings

    loaded = type(loaded)(loaded.spec.model_copy(update={"eval": EvalSettings(max_error_rate=1.0)}), loaded.path)
    result = evaluate(loaded, dataset, backend=ScriptedBackend(judge_down))
    assert all(r.error and "in prompt 'classify'" in r.error for r in result.rows)
    assert all(r.trace[-1].error and r.trace[-1].output is None for r in result.rows)


def test_the_candidate_hashes_the_functions_code(tmp_path):
    path = write_task(tmp_path)
    first = base_candidate(load_spec(path))
    assert isinstance(first, PipelineConfig) and list(first.prompts) == ["rewrite", "classify"]
    module = first.function.split(":")[0]
    (tmp_path / f"{module}.py").write_text(PIPELINE + "\n# changed\n")
    import importlib
    import sys

    importlib.reload(sys.modules[module])
    changed = base_candidate(load_spec(path))
    assert changed.code_hash != first.code_hash and changed.hash != first.hash
    assert candidate_from_json(first.model_dump(mode="json", by_alias=True)) == first


@pytest.mark.parametrize(
    ("task", "field", "message"),
    [
        ({"function": None}, "task.prompts", "belong to a code task"),
        ({"prompts": None}, "task.prompts", "needs the named prompts"),
        ({"prompt": [{"role": "user", "content": "x"}]}, "task.prompt", "has 'prompts', not 'prompt'"),
        ({"function": "no colon"}, "task.function", "should match pattern"),
        ({"prompts": {"Bad-Name": {"prompt": [{"role": "user", "content": "x"}]}}}, "task.prompts", "lowercase"),
    ],
)
def test_a_malformed_code_task_names_the_field(tmp_path, task, field, message):
    import yaml

    path = write_task(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["task"].update(task)
    data["task"] = {k: v for k, v in data["task"].items() if v is not None}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.field == field and message in str(info.value)


def test_search_prompts_must_be_the_tasks_prompts(tmp_path):
    with pytest.raises(InputError) as info:
        load_spec(write_task(tmp_path, prompts=["classify", "answer"]))
    assert info.value.field == "search.prompts" and "['answer'] not in task.prompts" in str(info.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import no_such_module_here\n", "cannot import module"),
        ("def other(input, prompts):\n    return 1\n", "has no attribute 'run'"),
        ("def run(input):\n    return 1\n", "two positional arguments"),
        ("run = 3\n", "is not a function"),
    ],
)
def test_a_function_that_cannot_be_called_is_refused_before_any_call(tmp_path, source, message):
    path = write_task(tmp_path, source=source)
    with pytest.raises(InputError) as info:
        loaded_and_data(path)
    assert info.value.field == "task.function" and message in str(info.value)
    assert str(path) in str(info.value)


AGENT = """
from promptopt.tasks import run_agent

def lookup(city):
    return {"paris": "18C", "oslo": "2C"}[city.lower()]

async def run(input, prompts):
    done = await run_agent(prompts.agent, {"lookup": lookup}, max_steps=3, question=input["text"])
    return done.reply.text
"""


def test_the_agent_loop_runs_tools_and_sends_their_results_back(tmp_path):
    import yaml

    path = write_task(tmp_path, source=AGENT)
    data = yaml.safe_load(path.read_text())
    data["task"]["output"] = {"type": "text"}
    data["task"]["prompts"] = {
        "agent": {
            "prompt": [{"role": "user", "content": "{{question}}"}],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        }
    }
    rows = [{"input": {"text": f"weather in {c}"}, "expected": t} for c, t in [("Paris", "18C"), ("Oslo", "2C")] * 5]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path.write_text(yaml.safe_dump(data, sort_keys=False))

    def model(request):
        if request.messages[-1]["role"] == "tool":
            return f"It is {request.messages[-1]['content']}"
        city = request.messages[-1]["content"].split()[-1]
        call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"city": city})}}
        return ModelResponse(text="", tool_calls=(call,))

    backend = ScriptedBackend(model)
    loaded, dataset = loaded_and_data(path)
    result = evaluate(loaded, dataset, backend=backend, split="train")
    row = result.rows[0]
    assert [s.tool_calls is not None for s in row.trace] == [True, False]
    assert row.output == f"It is {row.expected}"
    city = row.input["text"].split()[-1]
    second = next(c for c in backend.calls if c.messages[-1]["role"] == "tool" and city in c.messages[0]["content"])
    assert second.tools and second.messages[-2]["tool_calls"][0]["function"]["name"] == "lookup"
    assert second.messages[-1] == {"role": "tool", "tool_call_id": "c1", "content": row.expected}
    assert len(backend.calls) == 2 * len(dataset.train.cases)
