"""A code task through the CLI against a loopback OpenAI-compatible server: dry run, run (promoting the winning
bundle), report, registry show, and the CI gate of the bundle against production (a code task's trials on Ray
workers: tests/workers/test_ray_executor.py)."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from promptopt.cli.app import app
from promptopt.testing import FakeOpenAIServer
from tests.tasks.helpers import write_task


def answer(messages):
    """rewrite: 'short <i>'; classify: right with two examples, else right on half of the cases."""
    system, text = messages[0]["content"], messages[-1]["content"]
    if system.startswith("Shorten"):
        return f"short {text.split()[-1]}"
    i = int(text.split()[-1])
    right = "positive" if i % 2 else "negative"
    shots = sum(1 for m in messages if m["role"] == "assistant")
    return right if shots == 2 or i % 4 < 2 else ("negative" if right == "positive" else "positive")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    with FakeOpenAIServer(answer=answer) as server:
        path = write_task(tmp_path, few_shot={"max_k": 2, "pool_seeds": 2})
        data = yaml.safe_load(path.read_text())
        data["task"]["model"] = "openai/fake"
        data["registry"] = {"alpha": 0.1}  # 12 test cases: the lift's p-value is 0.0625
        for prompt in data["task"]["prompts"].values():
            prompt["model"] = "openai/fake"
            prompt.setdefault("params", {})["extra"] = {"api_base": server.url}
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        yield path, server


def invoke(path, *args, cache=True):
    tmp = path.parent
    where = ["--store", f"sqlite:///{tmp / 's.db'}"] + (["--cache", str(tmp / "c")] if cache else [])
    return CliRunner().invoke(app, [*args, *where])


def test_a_code_task_runs_promotes_reports_and_gates_from_the_cli(env):
    path, server = env
    dry = invoke(path, "run", str(path), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["calls_per_row"] == 2
    assert server.requests == 0  # a dry run calls nothing

    run = invoke(path, "run", str(path), "--json", "--sampler", "random", "--seed", "0", "--executor", "local")
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert out["best"]["validation_score"] == 1.0 and out["validation_test_gap"] == pytest.approx(0.0)
    assert out["best"]["config"]["function"].endswith(":run")
    assert out["promotion"]["promoted"] is True

    report = invoke(path, "report", out["run_id"], "--format", "markdown", "--output", "-", cache=False)
    assert report.exit_code == 0, report.output
    assert "rewrite → short " in report.output

    shown = invoke(path, "registry", "show", "two-step", "--label", "production", cache=False)
    assert shown.exit_code == 0, shown.output
    assert "rewrite" in shown.output and "classify" in shown.output

    gate = invoke(path, "eval", str(path), "--split", "test", "--against", "production")
    assert gate.exit_code == 1, gate.output  # the spec as written regresses against the promoted bundle
