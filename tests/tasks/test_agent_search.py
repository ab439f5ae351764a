"""An agent with one tool against a scripted backend: its spans recorded, the tool-call scorer scoring them,
and the search varying both of its prompts."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from promptopt.cache import DiskResponseCache
from promptopt.config import PipelineConfig, candidate_from_json
from promptopt.engine import Services
from promptopt.errors import InputError
from promptopt.models import ModelResponse, ScriptedBackend
from promptopt.search import RunOptions, SearchRun
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.validate import load_and_check

AGENT = """
from promptopt.tasks import run_agent

WEATHER = {"paris": "18C", "oslo": "2C", "rome": "25C"}


def lookup(city):
    return WEATHER.get(city.lower(), "unknown city")


async def run(input, prompts):
    done = await run_agent(prompts.agent, {"lookup": lookup}, max_steps=3, question=input["question"])
    final = await prompts.answer(question=input["question"], facts=done.reply.text)
    return final.text
"""

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
CITIES = ["Paris", "Oslo", "Rome"]


def write_agent(tmp_path, scorers=None):
    (tmp_path / "weather_agent.py").write_text(AGENT)
    rows = [
        {
            "input": {"question": f"weather in {c} ({i})"},
            "expected": {"tool_calls": [{"name": "lookup", "arguments": {"city": c}}]},
        }
        for i in range(8)
        for c in CITIES
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "weather-agent",
            "model": "fake/m",
            "function": "weather_agent:run",
            "prompts": {
                "agent": {
                    "prompt": [{"role": "user", "content": "{{question}}"}],
                    "params": {"temperature": 0.7},
                    "tools": [TOOL],
                },
                "answer": {
                    "prompt": [
                        {"role": "system", "content": "Answer from the facts."},
                        {"role": "user", "content": "{{question}} Facts: {{facts}}"},
                    ],
                    "params": {"temperature": 0.7},
                },
            },
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 0},
        "scorers": scorers or [{"type": "tool_call", "prompt": "agent"}, {"type": "steps", "max": 3, "weight": 0.5}],
        "search": {"temperature": [0.0]},
        "budget": {"trials": 6},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def model(request):
    """At temperature 0 the agent looks up the city asked about; warmer, it looks up London."""
    last = request.messages[-1]
    if last["role"] == "tool":
        return f"The tool says {last['content']}"
    if request.tools:
        city = request.messages[0]["content"].split()[2] if request.params["temperature"] == 0 else "London"
        call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"city": city})}}
        return ModelResponse(text="", tool_calls=(call,), prompt_tokens=5, completion_tokens=3)
    return "It is " + last["content"].split("Facts: ")[-1]


def test_the_agent_is_traced_scored_on_its_tool_calls_and_both_prompts_are_searched(tmp_path):
    loaded = load_spec(write_agent(tmp_path))
    dataset = load_and_check(loaded)
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    services = Services(backend=ScriptedBackend(model), cache=DiskResponseCache(tmp_path / "c"), records=store)
    options = RunOptions(seed=0, parallel=1, sampler="grid")
    result = asyncio.run(SearchRun(loaded=loaded, dataset=dataset, options=options, services=services).run())

    baseline = store.get_rows(result.baseline.experiment_id)
    assert [s.prompt for s in baseline[0].trace] == ["agent", "agent", "answer"]
    assert baseline[0].trace[0].tool_calls[0]["function"]["arguments"] == '{"city": "London"}'
    assert all(r.scores["tool_call"] == 0.0 and r.scores["steps"] == 1.0 for r in baseline)

    configs = [candidate_from_json(c.config) for c in result.leaderboard]
    assert all(isinstance(c, PipelineConfig) for c in configs)
    assert {c.prompt("agent").params.temperature for c in configs} == {0.0, 0.7}
    assert {c.prompt("answer").params.temperature for c in configs} == {0.0, 0.7}
    best = candidate_from_json(result.best.config)
    assert best.prompt("agent").params.temperature == 0.0
    winner_rows = store.get_rows(result.best.test_experiment_id)
    assert all(r.scores["tool_call"] == 1.0 for r in winner_rows)
    assert all(r.output.startswith("It is The tool says ") and "unknown" not in r.output for r in winner_rows)


def test_a_scorer_naming_a_prompt_the_task_lacks_is_refused(tmp_path):
    with pytest.raises(InputError) as info:
        load_spec(write_agent(tmp_path, scorers=[{"type": "tool_call", "prompt": "planner"}]))
    assert info.value.field == "scorers[0].prompt" and "'planner' is not one of task.prompts" in str(info.value)
