"""``--dry-run``: the calls and dollars a run would spend at most, and the training its fine-tune jobs would
need, without calling a model."""

from __future__ import annotations

from typing import Any

from promptopt.config import Example, PipelineConfig, PromptConfig, base_candidate, example_output
from promptopt.data import Dataset
from promptopt.engine import request_for
from promptopt.models import ModelBackend
from promptopt.search._build import BOOTSTRAP_SAMPLE, needs_prepass
from promptopt.search._finetune import estimate_fine_tunes
from promptopt.spec import LoadedSpec, template_variables


def estimate_run(
    loaded: LoadedSpec, dataset: Dataset, *, trials: int, top_k: int, backend: ModelBackend, seed: int = 0
) -> dict[str, Any]:
    """Upper bounds: every trial a distinct configuration, every call a cache miss, the largest prompt. A
    dataset whose confirmation slice is not carved yet is carved first (``seed``), as the run does before its
    pre-pass, demos and fine-tunes see train. A code task counts one call per prompt and row (``calls_per_row``):
    its function decides how often it really calls them (an agent loop more often; the budget stops it)."""
    spec = loaded.spec
    if not dataset.confirm.cases:
        dataset = dataset.carve_confirmation(spec.search.confirm.cases, seed=seed)
    base = base_candidate(loaded)
    prompts = list(base.prompts.values()) if isinstance(base, PipelineConfig) else [base]
    per_row = spec.eval.repeats * len(prompts)  # calls of one case: each repeat calls every prompt once
    prepass = min(BOOTSTRAP_SAMPLE, len(dataset.train)) * len(prompts) if needs_prepass(loaded) else 0
    proposals = spec.search.instructions.propose * 3
    search = trials * len(dataset.validation) * per_row
    verdict = (1 + max(1, top_k)) * len(dataset.test) * per_row if dataset.test.cases else 0
    confirm_spec = spec.search.confirm
    confirm = confirm_spec.shortlist * len(dataset.confirm) * per_row
    per_call: dict[str, float] = {}
    for prompt in prompts:
        for model, usd in _per_call(loaded, dataset, prompt, backend).items():
            per_call[model] = max(usd, per_call.get(model, 0.0))
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
        "calls_per_row": len(prompts),
        "rows": {"train": len(dataset.train), "validation": len(dataset.validation), "test": len(dataset.test)},
    }


def _per_call(loaded: LoadedSpec, dataset: Dataset, prompt: PromptConfig, backend: ModelBackend) -> dict[str, float]:
    """Dollars of one call of ``prompt`` with the most examples, per model it may use. A code task's prompt
    is rendered with the case's fields where it reads them (its function fills the others: left empty)."""
    spec = loaded.spec
    k = spec.search.few_shot.max_k
    worst = prompt
    read = {name for m in prompt.messages for name in template_variables(m.content)}
    blank = dict.fromkeys(read, "")
    if k:
        cases = dataset.train.cases[:k]
        shots = [Example(input=blank | c.input, output=example_output(c.expected)) for c in cases]
        worst = worst.model_copy(update={"examples": tuple(shots)})
    variables = blank | dataset.validation.cases[0].input
    out = {}
    for model in dict.fromkeys((prompt.model, *spec.search.models)):
        request = request_for(worst.model_copy(update={"model": model}), variables, 60)
        out[model] = backend.estimate_cost(request, prompt.params.max_tokens)
    return out
