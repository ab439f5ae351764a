"""A spec and a fake backend whose best configuration is known: instruction "EXPERT" plus two examples."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from promptopt.spec import load_spec
from promptopt.validate import load_and_check

SPEC = {
    "task": {
        "name": "known-best",
        "model": "fake/m",
        "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
        "output": {"type": "label", "labels": ["positive", "negative"]},
    },
    "dataset": {"file": "data.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 1},
    "scorers": [{"type": "exact_match"}],
    "eval": {"concurrency": 4},
    "search": {
        "instructions": {"variants": ["Decide.", "EXPERT: decide the sentiment."]},
        "few_shot": {"max_k": 2, "strategies": ["random", "balanced"], "pool_seeds": 2},
    },
    "budget": {"trials": 16},
}


def write_spec(tmp: Path, n: int = 40, **overrides) -> Path:
    rows = [
        {"input": {"text": f"review number {i}"}, "expected": "positive" if i % 2 else "negative"} for i in range(n)
    ]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = json.loads(json.dumps(SPEC))
    for key, value in overrides.items():
        spec[key] = value
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def loaded_and_data(path: Path):
    loaded = load_spec(path)
    return loaded, load_and_check(loaded)


def truth(text: str) -> str:
    return "positive" if int(text.split()[-1]) % 2 else "negative"


def known_best(request) -> str:
    """Right on every case with the EXPERT instruction and 2 examples; right on half of the cases with
    fewer; right on a quarter without EXPERT. Deterministic in the request."""
    system = request.messages[0]["content"]
    shots = sum(1 for m in request.messages if m["role"] == "assistant")
    text = request.messages[-1]["content"]
    i = int(text.split()[-1])
    right = truth(text)
    wrong = "negative" if right == "positive" else "positive"
    if "EXPERT" in system:
        return right if shots == 2 or i % 4 < 2 else wrong
    return right if i % 4 == 0 else wrong
