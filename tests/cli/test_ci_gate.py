"""`optimize eval --against`: a CI job gates a prompt change on an eval against production or an experiment."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from promptopt.cli.app import app
from promptopt.config import PromptConfig
from promptopt.registry import Registry
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.testing import FakeOpenAIServer


def answer(messages):
    """Right when the system message says CAREFUL, else always "negative" (wrong on half the rows)."""
    text = messages[-1]["content"]
    truth = "positive" if "good" in text else "negative"
    return truth if "CAREFUL" in messages[0]["content"] else "negative"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    with FakeOpenAIServer(answer=answer) as server:
        rows = [
            {
                "input": {"text": f"a {'good' if i % 2 else 'dull'} film {i}"},
                "expected": "positive" if i % 2 else "negative",
            }
            for i in range(20)
        ]
        (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for name, instruction in (("good", "Be CAREFUL: positive or negative?"), ("bad", "positive or negative?")):
            spec = {
                "task": {
                    "name": "gated",
                    "model": "openai/fake",
                    "prompt": [{"role": "system", "content": instruction}, {"role": "user", "content": "{{text}}"}],
                    "params": {"extra": {"api_base": server.url}},
                    "output": {"type": "label", "labels": ["positive", "negative"]},
                },
                "dataset": {"validation": "val.jsonl"},
                "scorers": [{"type": "exact_match"}],
            }
            (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(spec))
        yield tmp_path


def invoke(tmp, *args):
    return CliRunner().invoke(app, [*args, "--store", f"sqlite:///{tmp / 's.db'}", "--cache", str(tmp / "c")])


def test_gate_against_an_experiment(env):
    good = json.loads(invoke(env, "eval", str(env / "good.yaml"), "--json").output)
    bad = json.loads(invoke(env, "eval", str(env / "bad.yaml"), "--json").output)
    regressed = invoke(env, "eval", str(env / "bad.yaml"), "--against", good["experiment_id"])
    assert regressed.exit_code == 1, regressed.output
    assert "regress" in regressed.output.lower()
    improved = invoke(env, "eval", str(env / "good.yaml"), "--against", bad["experiment_id"])
    assert improved.exit_code == 0, improved.output


def test_gate_against_the_production_label(env):
    store = get_store(f"sqlite:///{env / 's.db'}")
    registry = Registry(store)
    version, _ = registry.register(
        "gated", PromptConfig.from_task(load_spec(env / "good.yaml").spec.task), created_by="test"
    )
    registry.set_label("gated", "production", version.version, who="test", why="first")
    out = invoke(env, "eval", str(env / "bad.yaml"), "--against", "production", "--json")
    assert out.exit_code == 1
    data = json.loads(out.output[out.output.index("{") :])
    assert data["passed"] is False and data["comparison"]["regressed"]
    assert invoke(env, "eval", str(env / "good.yaml"), "--against", "production").exit_code == 0
