"""A prompt whose better instruction is known, an application that uses it and logs through the SDK, and a
server with the logs routes: the pieces of the scheduled re-optimization tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from promptopt.config import PromptConfig
from promptopt.logs._routes import logs_router
from promptopt.models import ScriptedBackend
from promptopt.models._base import ModelRequest
from promptopt.registry import Lineage, Registry
from promptopt.sdk import PromptClient
from promptopt.sdk._logger import PromptLogger
from promptopt.server import create_app, serve_in_thread
from promptopt.spec import load_spec
from promptopt.store import Store

PROMPT = "reviews"
TOKEN = "logs-test-token-0123456789"
EXPERT = "EXPERT: decide the sentiment."
SPEC: dict[str, Any] = {
    "task": {
        "name": PROMPT,
        "model": "fake/m",
        "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
        "output": {"type": "label", "labels": ["positive", "negative"]},
    },
    "dataset": {"file": "offline.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 1},
    "scorers": [{"type": "exact_match"}],
    "eval": {"concurrency": 8},
    "search": {"instructions": {"variants": [EXPERT]}},
    "budget": {"trials": 4},
}


def write_spec(folder: Path, **overrides: Any) -> Path:
    """The spec (and a small offline dataset it names, which scheduled runs replace by fresh logs)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"input": {"text": f"review number {i}"}, "expected": truth(i)} for i in range(8)]
    (folder / "offline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {**json.loads(json.dumps(SPEC)), **overrides}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def truth(i: int) -> str:
    return "positive" if i % 2 else "negative"


def answer_for(i: int, *, expert: bool) -> str:
    """Right on every case with the EXPERT instruction; right on a quarter of them without it."""
    right = truth(i)
    if expert or i % 4 == 0:
        return right
    return "negative" if right == "positive" else "positive"


def answer(request: ModelRequest) -> str:
    return answer_for(int(request.messages[-1]["content"].split()[-1]), expert=EXPERT in request.messages[0]["content"])


def backend(latency_s: float = 0.0) -> ScriptedBackend:
    return ScriptedBackend(answer, latency_s=latency_s)


def register_production(store: Store, spec_path: Path, *, test_score: float | None = 0.9) -> int:
    """v1 = the spec's prompt as written, labelled production (registered with ``test_score``)."""
    config = PromptConfig.from_task(load_spec(spec_path).spec.task)
    registry = Registry(store)
    version, _ = registry.register(PROMPT, config, lineage=Lineage(test_score=test_score), created_by="test")
    registry.set_label(PROMPT, "production", version.version, who="test")
    return version.version


def app_traffic(prompts: PromptClient, logger: PromptLogger, cases: range) -> list[str]:
    """What an application does per request: get the production prompt, call the model, log the call; the
    user then says what the right label was (feedback)."""
    ids = []
    for i in cases:
        prompt = prompts.get(PROMPT)
        kwargs = prompt.render(text=f"review number {i}")
        output = answer(ModelRequest(model=kwargs["model"], messages=tuple(kwargs["messages"])))
        log_id = logger.log(
            PROMPT,
            prompt.version,
            {"text": f"review number {i}"},
            output,
            model=kwargs["model"],
            latency_s=0.01,
            tokens=12,
            cost_usd=0.0,
            label="production",
            metadata={"request": i},
        )
        logger.feedback(log_id, label=truth(i))
        ids.append(log_id)
    return ids


@contextmanager
def served(store: Store, *, port: int = 0) -> Iterator[str]:
    """The registry and the logs routes over ``store`` under a real uvicorn server on loopback."""
    app = create_app(store, token=TOKEN, routers=[logs_router(store)])
    with serve_in_thread(app, port=port) as url:
        yield url
