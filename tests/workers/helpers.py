"""A small labelled spec, its trial context over four temperatures, and the jobs of one batch."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from promptopt.config import PromptConfig
from promptopt.search._trial import TrialContext, TrialJob
from promptopt.search_spaces import SearchSpace, TemperatureDimension
from promptopt.spec import load_spec
from promptopt.validate import load_and_check
from tests.workers.fakes import truth

TEMPERATURES = (0.0, 0.25, 0.5, 0.75)
SPEC = {
    "task": {
        "name": "ray-trials",
        "model": "fake/m",
        "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
        "output": {"type": "label", "labels": ["positive", "negative"]},
    },
    "dataset": {"file": "data.jsonl", "split": {"train": 0.5, "validation": 0.25, "test": 0.25}},
    "scorers": [{"type": "exact_match"}],
    "eval": {"concurrency": 16, "retries": 0},
}
VALIDATION_ROWS = 4


def write_spec(tmp: Path, **overrides) -> Path:
    rows = [{"input": {"text": f"review {i}"}, "expected": truth(f"review {i}")} for i in range(16)]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = json.loads(json.dumps(SPEC))
    for path, value in overrides.items():
        section, key = path.split(".")
        spec.setdefault(section, {})[key] = value
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp / "spec.yaml"


def context(tmp: Path, **overrides) -> TrialContext:
    loaded = load_spec(write_spec(tmp, **overrides))
    space = SearchSpace(PromptConfig.from_task(loaded.spec.task), (TemperatureDimension(TEMPERATURES),))
    return TrialContext(loaded=loaded, dataset=load_and_check(loaded), space=space.to_json(), run_id="run-1")


def jobs(first: int = 0) -> list[TrialJob]:
    return [TrialJob(number=first + i, params={"temperature": t}) for i, t in enumerate(TEMPERATURES)]
