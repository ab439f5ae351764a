"""A two-prompt code task over a scripted backend: ``rewrite`` then ``classify``, whose best configuration is
known (the classifier answers right only with its EXPERT instruction or with two examples)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import yaml

from promptopt.spec import load_spec
from promptopt.validate import load_and_check

PIPELINE = """
from promptopt.tasks import Prompts


async def run(input, prompts: Prompts):
    short = await prompts.rewrite(text=input["text"])
    label = await prompts["classify"](text=short.text)
    return label.value
"""


def spec_data(module: str, **search) -> dict:
    return {
        "task": {
            "name": "two-step",
            "model": "fake/m",
            "function": f"{module}:run",
            "output": {"type": "label", "labels": ["positive", "negative"]},
            "prompts": {
                "rewrite": {
                    "prompt": [{"role": "system", "content": "Shorten."}, {"role": "user", "content": "{{text}}"}],
                    "params": {"max_tokens": 12},
                },
                "classify": {
                    "model": "fake/judge",
                    "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
                    "output": {"type": "label", "labels": ["positive", "negative"]},
                },
            },
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 1},
        "scorers": [{"type": "exact_match"}],
        "eval": {"concurrency": 4},
        "search": search,
        "budget": {"trials": 10},
    }


def write_task(tmp: Path, *, source: str = PIPELINE, n: int = 40, **search) -> Path:
    """The spec, its data and its function module (a fresh module name, so tests never share an import)."""
    module = f"pipe_{uuid.uuid4().hex[:8]}"
    (tmp / f"{module}.py").write_text(source)
    rows = [
        {"input": {"text": f"review number {i}"}, "expected": "positive" if i % 2 else "negative"} for i in range(n)
    ]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_data(module, **search), sort_keys=False))
    return path


def loaded_and_data(path: Path):
    loaded = load_spec(path)
    return loaded, load_and_check(loaded)


def two_step(request) -> str:
    """rewrite answers 'short <i>'; classify is right with EXPERT in its instruction or two examples, else right
    on half of the cases."""
    system = request.messages[0]["content"]
    text = request.messages[-1]["content"]
    if system.startswith("Shorten") or request.model == "fake/m":
        return f"short {text.split()[-1]}"
    i = int(text.split()[-1])
    right = "positive" if i % 2 else "negative"
    wrong = "negative" if right == "positive" else "positive"
    shots = sum(1 for m in request.messages if m["role"] == "assistant")
    return right if "EXPERT" in system or shots == 2 or i % 4 < 2 else wrong
