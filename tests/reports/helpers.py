"""Real runs for report tests: the search on a scripted backend with two priced models, inputs and outputs that
carry HTML, and a winner that regresses on a few test cases. A run takes a few seconds."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from promptopt.cache import DiskResponseCache
from promptopt.engine import Services
from promptopt.models import ScriptedBackend
from promptopt.models._base import ModelRequest, ModelResponse
from promptopt.search import RunOptions, RunResult, SearchRun
from promptopt.spec import load_spec
from promptopt.store import Store, get_store
from promptopt.validate import load_and_check
from tests.search.helpers import SPEC

# Script that would retitle the page if a report ever let it through unescaped.
PAYLOAD = "</td></pre><script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED'\">"
PRICES = {"fake/m": 0.0005, "fake/big": 0.002}
LATENCY = {"fake/m": 0.05, "fake/big": 0.4}


def _number(text: str) -> int:
    return int(re.findall(r"\d+", text)[-1])


def respond(request: ModelRequest) -> str:
    """The spec as written is right on i % 4 == 0 (and the big model also on i % 4 == 1). Any change breaks the
    cases i % 8 == 0, so every winner regresses somewhere; the EXPERT instruction is right on all the others.
    Answers carry HTML around the label."""
    system = request.messages[0]["content"]
    shots = sum(1 for m in request.messages if m["role"] == "assistant")
    i = _number(request.messages[-1]["content"])
    big = request.model == "fake/big"
    right = "positive" if i % 2 else "negative"
    wrong = "negative" if right == "positive" else "positive"
    if system == "Label it." and shots == 0:
        ok = i % 4 == 0 or (big and i % 4 == 1)
    elif i % 8 == 0:
        ok = False
    elif "EXPERT" in system:
        ok = True
    else:
        ok = i % 4 == 1 or (big and i % 4 == 2)
    return f"<b>{right if ok else wrong}</b>"


@dataclass
class PricedBackend(ScriptedBackend):
    """A scripted backend that charges and times each call by model (without sleeping)."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        answer = await super().complete(request)
        return answer.model_copy(update={"cost_usd": PRICES[request.model], "latency_s": LATENCY[request.model]})

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return PRICES[request.model]


def write_spec(tmp: Path, *, n: int = 48, name: str = "html-reviews") -> Path:
    rows = [
        {
            "input": {"text": f"{PAYLOAD if i % 5 == 0 else ''}review & <i>number</i> {i}"},
            "expected": "positive" if i % 2 else "negative",
        }
        for i in range(n)
    ]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = json.loads(json.dumps(SPEC))
    spec["task"]["name"] = name
    spec["search"]["models"] = ["fake/m", "fake/big"]
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def make_run(
    tmp: Path, *, trials: int = 14, seed: int = 0, store: Store | None = None, objectives: tuple[str, ...] = ("score",)
) -> tuple[RunResult, Store]:
    """A finished run in ``tmp/s.db`` (or ``store``), made by the real search on the priced scripted backend."""
    loaded = load_spec(write_spec(tmp))
    store = store or get_store(f"sqlite:///{tmp / 's.db'}")
    options = RunOptions(seed=seed, parallel=2, max_trials=trials, objectives=objectives)
    services = Services(backend=PricedBackend(respond), cache=DiskResponseCache(tmp / "cache"), records=store)
    run = SearchRun(loaded=loaded, dataset=load_and_check(loaded), options=options, services=services)
    return asyncio.run(run.run()), store


def scored_rows(store: Store, experiment_id: str) -> list[Any]:
    return [r for r in store.get_result(experiment_id).rows if r.objective is not None and r.error is None]
