"""A run's plan: the options it was started with, and the limits they give once the held-out verdict's share
of the budget is set aside."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from promptopt.data import Dataset
from promptopt.engine import BudgetUse, LocalBudget
from promptopt.errors import InputError
from promptopt.models import ModelBackend
from promptopt.spec import LoadedSpec
from promptopt.validate import check_fine_tune


class RunOptions(BaseModel):
    model_config = ConfigDict(frozen=True)
    # "auto": chosen for the spec when the run starts (promptopt.search._study.resolve_sampler).
    sampler: str = "auto"
    seed: int = 0
    # "designed": after the baseline, the spec's instruction with the most examples (and a constrained output
    # where searched) is tried before the sampler's own start-up trials (see SearchSpace.design). "region"
    # (guided sampler only): every trial stays inside the region a practitioner searches first (constrained
    # output, the most examples: SearchSpace.region) until it has no untried point left. "screen" (guided
    # only): after the baseline, each dimension's designed value alone and all together (SearchSpace.screen),
    # then the model, with no random start-up.
    start: Literal["baseline", "designed", "region", "screen"] = "baseline"
    parallel: int = 1
    objectives: tuple[str, ...] = ("score",)
    top_k: int = 2
    max_trials: int | None = None
    max_calls: int | None = None
    max_usd: float | None = None
    max_wall_s: float | None = None
    promote: bool = True
    who: str = "optimize run"


class RunPlan(BaseModel):
    """The limits of a run. The held-out verdict (the shortlist on the confirmation slice, baseline + top-k on
    the test split, plus the incumbent that promotion evaluates again) is paid from the same budget, so the
    search stops while
    ``verdict_calls`` calls and ``verdict_usd`` dollars are left."""

    model_config = ConfigDict(frozen=True)
    max_trials: int
    max_calls: int | None
    max_usd: float | None
    max_wall_s: float | None
    verdict_calls: int
    verdict_usd: float
    promoting: bool

    def search_budget(self, spent: BudgetUse) -> LocalBudget:
        """The search's budget, ``spent`` already counted (what a resumed run paid before)."""
        return LocalBudget(
            model_calls=None if self.max_calls is None else self.max_calls - self.verdict_calls,
            usd=None if self.max_usd is None else max(0.0, self.max_usd - self.verdict_usd),
            wall_s=self.max_wall_s,
            start=spent,
        )

    def verdict_budget(self, spent: BudgetUse) -> LocalBudget:
        """The whole budget, for the verdict and the promotion after the search spent ``spent``."""
        return LocalBudget(model_calls=self.max_calls, usd=self.max_usd, start=spent)


def plan_run(loaded: LoadedSpec, dataset: Dataset, options: RunOptions, backend: ModelBackend) -> RunPlan:
    """The plan of a run; the options override the spec's budget.

    Raises:
        InputError: the call budget leaves nothing for the search once the verdict's calls are set aside, or
            the sampler cannot search the objectives asked for (``guided`` models one), or a fine-tune job
            cannot be trained here (``check_fine_tune``).
    """
    if options.sampler == "guided" and len(options.objectives) > 1:
        raise InputError(
            "--sampler",
            "sampler",
            f"guided models one objective, got {','.join(options.objectives)}; use tpe or random with several",
        )
    check_fine_tune(loaded)
    budget, test_rows = loaded.spec.budget, len(dataset.test)
    promoting = options.promote and loaded.spec.registry.promote and bool(dataset.test.cases)
    evals = 1 + max(1, options.top_k) + (1 if promoting else 0)
    confirm = loaded.spec.search.confirm
    confirm_calls = confirm.shortlist * len(dataset.confirm) if dataset.confirm.cases else 0
    # A code task's row calls each of its prompts at least once as it is usually written (an agent may call more).
    per_row = len(loaded.spec.task.prompts or {}) or 1
    verdict_calls = (evals * test_rows + confirm_calls) * loaded.spec.eval.repeats * per_row
    max_trials = options.max_trials or budget.effective_trials
    max_calls = options.max_calls or budget.model_calls or _preset_calls(loaded, dataset, options, max_trials, backend)
    if max_calls is not None and max_calls <= verdict_calls:
        raise InputError(
            str(loaded.path),
            "budget.model_calls",
            f"{max_calls} calls leave nothing for the search: the held-out verdict alone "
            f"needs up to {verdict_calls} (baseline + top_k={options.top_k} on "
            f"{test_rows} test rows); raise it or lower --top-k",
        )
    max_usd = options.max_usd if options.max_usd is not None else budget.usd
    return RunPlan(
        max_trials=max_trials,
        max_calls=max_calls,
        max_usd=max_usd,
        max_wall_s=options.max_wall_s or budget.wall_s,
        verdict_calls=verdict_calls,
        verdict_usd=verdict_calls * _per_call_usd(loaded, dataset, max_usd, backend),
        promoting=promoting,
    )


def _preset_calls(
    loaded: LoadedSpec, dataset: Dataset, options: RunOptions, trials: int, backend: ModelBackend
) -> int | None:
    """The call budget a preset buys: what ``trials`` full evals and the verdict need at most (every trial a
    distinct configuration, every call a cache miss)."""
    if loaded.spec.budget.preset is None:
        return None
    from promptopt.search._estimate import estimate_run

    calls: int = estimate_run(loaded, dataset, trials=trials, top_k=options.top_k, backend=backend)["model_calls"]
    return calls


def _per_call_usd(loaded: LoadedSpec, dataset: Dataset, max_usd: float | None, backend: ModelBackend) -> float:
    if max_usd is None or not dataset.test.cases:
        return 0.0
    from promptopt.search._estimate import estimate_run

    est = estimate_run(loaded, dataset, trials=1, top_k=0, backend=backend)
    return float(max(est["cost_per_call_usd"].values()))
