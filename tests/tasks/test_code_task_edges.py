"""Edges of code tasks: a failed call the function catches still fails its row, the budget still stops the
eval, a prompt called without a variable names itself, variables that are not JSON are recorded, the code that
runs is the code on disk and the candidate's, and the spec refuses what a code task cannot mean."""

from __future__ import annotations

import asyncio
import importlib
import sys

import pytest
import yaml

from promptopt.config import base_candidate
from promptopt.engine import LocalBudget, Services, evaluate_config
from promptopt.errors import BudgetExceeded, InputError, ModelCallError
from promptopt.models import ScriptedBackend
from promptopt.spec import load_spec
from promptopt.store import get_store
from tests.tasks.helpers import PIPELINE, loaded_and_data, two_step, write_task

CATCHING = PIPELINE.replace(
    '    short = await prompts.rewrite(text=input["text"])\n',
    "    try:\n"
    '        short = (await prompts.rewrite(text=input["text"])).text\n'
    "    except Exception:\n"
    '        short = input["text"]\n',
).replace('label = await prompts["classify"](text=short.text)', 'label = await prompts["classify"](text=short)')


def evaluate(loaded, dataset, config=None, *, split="validation", **services):
    services.setdefault("backend", ScriptedBackend(two_step))
    return asyncio.run(
        evaluate_config(loaded, dataset, config or base_candidate(loaded), split=split, services=Services(**services))
    )


def test_a_failed_call_the_function_catches_still_fails_its_row(tmp_path):
    assert "except Exception" in CATCHING
    loaded, dataset = loaded_and_data(write_task(tmp_path, source=CATCHING))
    loaded = type(loaded)(
        loaded.spec.model_copy(update={"eval": loaded.spec.eval.model_copy(update={"max_error_rate": 1.0})}),
        loaded.path,
    )

    def rewrite_down(request):
        if request.messages[0]["content"].startswith("Shorten"):
            return ModelCallError("overloaded", retryable=False, status=503)
        return two_step(request)

    result = evaluate(loaded, dataset, backend=ScriptedBackend(rewrite_down))
    assert all(r.error and "model call failed in prompt 'rewrite'" in r.error for r in result.rows)
    assert all(r.objective is None for r in result.rows)


def test_a_budget_that_runs_out_stops_the_eval_even_if_the_function_catches_it(tmp_path):
    loaded, dataset = loaded_and_data(write_task(tmp_path, source=CATCHING))
    backend = ScriptedBackend(two_step)
    with pytest.raises(BudgetExceeded):
        evaluate(loaded, dataset, backend=backend, budget=LocalBudget(model_calls=5))
    assert len(backend.calls) <= 5 + loaded.spec.eval.concurrency


def test_a_prompt_called_without_a_variable_its_template_reads_names_the_prompt(tmp_path):
    source = PIPELINE.replace('prompts.rewrite(text=input["text"])', 'prompts.rewrite(body=input["text"])')
    loaded, dataset = loaded_and_data(write_task(tmp_path, source=source))
    loaded = type(loaded)(
        loaded.spec.model_copy(update={"eval": loaded.spec.eval.model_copy(update={"max_error_rate": 1.0})}),
        loaded.path,
    )
    result = evaluate(loaded, dataset)
    assert all("prompt 'rewrite' was called without" in r.error and "it reads ['text']" in r.error for r in result.rows)


def test_variables_that_are_not_json_are_recorded_as_text(tmp_path):
    source = PIPELINE.replace(
        'prompts.rewrite(text=input["text"])', 'prompts.rewrite(text=input["text"], extra=object())'
    )
    loaded, dataset = loaded_and_data(write_task(tmp_path, source=source))
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    result = evaluate(loaded, dataset, records=store)
    stored = store.get_rows(result.experiment_id)
    assert stored and all(r.error is None for r in stored)
    assert stored[0].trace[0].input["extra"].startswith("<object object at")


def test_an_edited_function_is_a_new_candidate_and_an_old_candidate_is_refused(tmp_path):
    path = write_task(tmp_path)
    loaded, dataset = loaded_and_data(path)
    old = base_candidate(loaded)
    module = old.function.split(":")[0]
    (tmp_path / f"{module}.py").write_text(PIPELINE.replace("return label.value", "return 'positive'"))
    new = base_candidate(load_spec(path))  # the file on disk is imported again
    assert new.code_hash != old.code_hash
    assert all(r.output == "positive" for r in evaluate(loaded, dataset, new).rows)
    with pytest.raises(InputError, match="changed since this candidate was built"):
        evaluate(loaded, dataset, old)


def test_two_specs_with_modules_of_one_name_each_run_their_own(tmp_path):
    outputs = []
    for i, answer in enumerate(("positive", "negative")):
        folder = tmp_path / f"spec{i}"
        folder.mkdir()
        (folder / "same_name_pipe.py").write_text(f"async def run(input, prompts):\n    return {answer!r}\n")
        path = write_task(folder)
        data = yaml.safe_load(path.read_text())
        data["task"]["function"] = "same_name_pipe:run"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        loaded, dataset = loaded_and_data(path)
        outputs.append({r.output for r in evaluate(loaded, dataset).rows})
    assert outputs == [{"positive"}, {"negative"}]
    sys.modules.pop("same_name_pipe", None)
    importlib.invalidate_caches()


def test_the_dry_run_of_the_pipeline_example_counts_each_prompt(tmp_path):
    from pathlib import Path

    from promptopt.search._estimate import estimate_run

    spec = Path(__file__).resolve().parents[2] / "experiments" / "pipeline" / "spec.yaml"
    loaded, dataset = loaded_and_data(spec)
    estimate = estimate_run(loaded, dataset, trials=12, top_k=1, backend=ScriptedBackend(two_step))
    assert estimate["calls_per_row"] == 2 and estimate["breakdown"]["search"] == 12 * 30 * 2


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"task": {"params": {"temperature": 0.5}}}, "task.params", "sets it per prompt"),
        ({"scorers": [{"type": "steps", "max": 2}]}, None, None),
    ],
)
def test_what_a_code_task_cannot_mean_is_refused(tmp_path, change, field, message):
    path = write_task(tmp_path)
    data = yaml.safe_load(path.read_text())
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if field is None:
        assert load_spec(path).spec.scorers[0].type == "steps"  # a trace scorer is fine on a code task
        return
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.field == field and message in str(info.value)


def test_a_one_prompt_spec_with_a_judge_loads_and_a_trace_scorer_is_refused(tmp_path):
    from tests.search.helpers import write_spec

    judge = {"type": "llm_judge", "model": "fake/m", "prompt": "Rate {{output}}", "choices": {"good": 1, "bad": 0}}
    assert load_spec(write_spec(tmp_path, scorers=[judge])).spec.scorers[0].type == "llm_judge"
    with pytest.raises(InputError) as info:
        load_spec(write_spec(tmp_path, scorers=[{"type": "tool_call"}]))
    assert info.value.field == "scorers[0].type" and "write the task as code" in str(info.value)
