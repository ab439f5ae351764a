"""A code task in the application: its registered bundle run by the app's own model client, each input
logged with its trace, and those logs exported as a dataset that the same spec reads as it is."""

from __future__ import annotations

import asyncio
import importlib
import json

import yaml
from typer.testing import CliRunner

from promptopt.cli.app import app
from promptopt.config import PipelineConfig, base_candidate
from promptopt.engine import Services, evaluate_config
from promptopt.models import ScriptedBackend
from promptopt.registry import Registry
from promptopt.sdk import PromptClient, PromptLogger, run_task
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.tasks import PromptReply
from promptopt.validate import load_and_check
from tests.tasks.helpers import two_step, write_task


class _Request:
    """What ``two_step`` reads of a request, from what the application's client was given."""

    def __init__(self, messages, params):
        self.messages, self.model = messages, params["model"]


async def app_model(messages, params) -> PromptReply:
    return PromptReply(text=two_step(_Request(messages, params)))


def test_logs_of_a_pipeline_are_a_dataset_the_spec_reads_as_it_is(tmp_path):
    spec_path = write_task(tmp_path)
    loaded = load_spec(spec_path)
    bundle = base_candidate(loaded)
    assert isinstance(bundle, PipelineConfig)
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = get_store(url)
    registry = Registry(store)
    version, _ = registry.register("two-step", bundle, created_by="test")
    registry.set_label("two-step", "production", version.version, who="test")

    fetched = PromptClient(store, cache_dir=False).get("two-step")
    function = importlib.import_module(bundle.function.split(":")[0]).run
    inputs = [{"text": f"review number {i}"} for i in range(8)]
    logger = PromptLogger(store, spool_dir=False)
    runs = []
    for i, inp in enumerate(inputs):
        run = asyncio.run(run_task(fetched, function, inp, complete=app_model))
        runs.append(run)
        log_id = logger.log_task(fetched, inp, run)
        logger.feedback(log_id, label="positive" if i % 2 else "negative")
    assert logger.flush()
    logger.close()
    assert all(r.code_matches and [s.prompt for s in r.spans] == ["rewrite", "classify"] for r in runs)
    assert runs[0].spans[1].input == {"text": runs[0].spans[0].output}

    out = tmp_path / "from-logs.jsonl"
    result = CliRunner().invoke(app, ["logs", "export", "--prompt", "two-step", "--out", str(out), "--store", url])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == inputs
    assert [len(r["metadata"]["app"]["trace"]) for r in rows] == [2] * len(inputs)

    data = yaml.safe_load(spec_path.read_text())
    data["dataset"] = {"file": out.name, "split": {"train": 0.5, "validation": 0.5, "test": 0.0}, "seed": 0}
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False))
    reloaded = load_spec(spec_path)
    dataset = load_and_check(reloaded)
    evaluated = asyncio.run(
        evaluate_config(
            reloaded, dataset, bundle, split="validation", services=Services(backend=ScriptedBackend(two_step))
        )
    )
    assert len(evaluated.rows) == len(dataset.validation.cases) > 0
    assert all(r.error is None and len(r.trace) == 2 for r in evaluated.rows)
