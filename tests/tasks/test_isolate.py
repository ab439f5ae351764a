"""``eval.isolate: true``: the function in worker processes; the same calls and scores as in process, and a
function that hangs, crashes or cannot start fails only its rows."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from promptopt.cache import DiskResponseCache
from promptopt.config import base_candidate
from promptopt.engine import Services, evaluate_config
from promptopt.errors import ModelCallError
from promptopt.models import ScriptedBackend
from tests.tasks.helpers import PIPELINE, loaded_and_data, two_step, write_task


def isolated(tmp_path, source=PIPELINE, **settings):
    path = write_task(tmp_path, source=source)
    data = yaml.safe_load(path.read_text())
    data["eval"] = {"concurrency": 2, "isolate": True, "max_error_rate": 1.0, **settings}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return loaded_and_data(path)


def evaluate(loaded, dataset, *, split="validation", **services):
    services.setdefault("backend", ScriptedBackend(two_step))
    config = base_candidate(loaded)
    return asyncio.run(evaluate_config(loaded, dataset, config, split=split, services=Services(**services)))


def test_an_isolated_task_makes_the_same_calls_and_scores_as_in_process(tmp_path):
    loaded, dataset = isolated(tmp_path)
    inside = ScriptedBackend(two_step)
    plain = loaded.spec.model_copy(update={"eval": loaded.spec.eval.model_copy(update={"isolate": False})})
    expected = evaluate(type(loaded)(plain, loaded.path), dataset, backend=inside)
    outside = ScriptedBackend(two_step)
    got = evaluate(loaded, dataset, backend=outside, cache=DiskResponseCache(tmp_path / "c"))
    assert sorted(repr(r.messages) for r in outside.calls) == sorted(repr(r.messages) for r in inside.calls)
    assert [(r.case_id, r.output, r.objective) for r in got.rows] == [
        (r.case_id, r.output, r.objective) for r in expected.rows
    ]
    assert [[s.prompt for s in r.trace] for r in got.rows] == [["rewrite", "classify"]] * len(got.rows)


def test_a_worker_that_hangs_or_dies_fails_only_its_row(tmp_path):
    source = PIPELINE.replace(
        "    return label.value",
        "    n = int(input['text'].split()[-1])\n"
        "    if n == 3:\n        import time; time.sleep(60)\n"
        "    if n == 5:\n        import os; os._exit(7)\n"
        "    return label.value",
    )
    loaded, dataset = isolated(tmp_path, source=source, task_timeout_s=1.5)
    result = evaluate(loaded, dataset, split="train")
    by_n = {int(r.input["text"].split()[-1]): r for r in result.rows}
    if 3 in by_n:
        assert "timed out after 1.5 s of its own time" in by_n[3].error
    if 5 in by_n:
        assert "crashed (exit code 7)" in by_n[5].error
    assert {3, 5} & set(by_n), "the train split holds neither case: change the helper's seed"
    others = [r for n, r in by_n.items() if n not in (3, 5)]
    assert others and all(r.error is None and r.objective is not None for r in others)


def test_a_failed_model_call_fails_the_row_as_in_process(tmp_path):
    def judge_down(request):
        if request.model == "fake/judge":
            return ModelCallError("invalid key", retryable=False, status=401)
        return two_step(request)

    loaded, dataset = isolated(tmp_path)
    result = evaluate(loaded, dataset, backend=ScriptedBackend(judge_down))
    assert all("model call failed in prompt 'classify'" in r.error for r in result.rows)


def test_a_function_that_cannot_start_in_its_worker_fails_every_row_saying_why(tmp_path):
    source = (
        "import os\nif os.environ.get('PROMPTOPT_ISOLATED_PROBE'):\n    raise RuntimeError('worker only')\n" + PIPELINE
    )
    loaded, dataset = isolated(tmp_path, source=source)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMPTOPT_ISOLATED_PROBE", "1")  # the worker inherits it; this process imported the module already
        result = evaluate(loaded, dataset)
    assert all(
        "cannot start in its worker: cannot import module" in (r.error or "")
        and "RuntimeError: worker only" in (r.error or "")
        for r in result.rows
    ), [r.error for r in result.rows][:2]
