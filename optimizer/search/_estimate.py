"""``--dry-run``: the calls and dollars a run would spend at most, and the training its fine-tune jobs would
need, without calling a model."""

from __future__ import annotations

from typing import Any

from promptopt.config import Example, PromptConfig, example_output
from promptopt.data import Dataset
from promptopt.engine import request_for
from promptopt.models import ModelBackend
from promptopt.search._build import BOOTSTRAP_SAMPLE, needs_prepass
from promptopt.search._finetune import estimate_fine_tunes
from promptopt.spec import LoadedSpec


def estimate_run(
    loaded: LoadedSpec, dataset: Dataset, *, trials: int, top_k: int, backend: ModelBackend, seed: int = 0
) -> dict[str, Any]:
    """Upper bounds: every trial a distinct configuration, every call a cache miss, the largest prompt. A
    dataset whose confirmation slice is not carved yet is carved first (``seed``), as the run does before its
    pre-pass, demos and fine-tunes see train."""
    spec = loaded.spec
    if not dataset.confirm.cases:
        dataset = dataset.carve_confirmation(spec.search.confirm.cases, seed=seed)
    repeats = spec.eval.repeats
    prepass = min(BOOTSTRAP_SAMPLE, len(dataset.train)) if needs_prepass(loaded) else 0
    proposals = spec.search.instructions.propose * 3
    search = trials * len(dataset.validation) * repeats
    verdict = (1 + max(1, top_k)) * len(dataset.test) * repeats if dataset.test.cases else 0
    confirm_spec = spec.search.confirm
    confirm = confirm_spec.shortlist * len(dataset.confirm) * repeats
    worst = PromptConfig.from_task(spec.task)
    k = spec.search.few_shot.max_k
    if k:
        shots = [Example(input=c.input, output=example_output(c.expected)) for c in dataset.train.cases[:k]]
        worst = worst.model_copy(update={"examples": tuple(shots)})
    per_call = {}
    for model in dict.fromkeys((spec.task.model, *spec.search.models)):
        request = request_for(worst.model_copy(update={"model": model}), dataset.validation.cases[0].input, 60)
        per_call[model] = backend.estimate_cost(request, spec.task.params.max_tokens)
    calls = prepass + proposals + search + confirm + verdict
    fine_tune = estimate_fine_tunes(loaded, dataset)
    return {
        "model_calls": calls,
        "cost_usd": round(calls * max(per_call.values()), 6),
        "preset": spec.budget.preset,
        "breakdown": {
            "prepass": prepass,
            "proposals": proposals,
            "search": search,
            "confirm": confirm,
            "verdict": verdict,
        },
        "cost_per_call_usd": per_call,
        **({"fine_tune": fine_tune} if fine_tune else {}),
        "trials": trials,
        "rows": {"train": len(dataset.train), "validation": len(dataset.validation), "test": len(dataset.test)},
    }
