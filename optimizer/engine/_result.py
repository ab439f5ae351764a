"""Results of an eval: per-row records and the experiment aggregate, immutable values."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptopt.config import LabelCalibration
from promptopt.tasks import Span


class RowResult(BaseModel):
    """One case (and repeat) of an eval. ``error`` is set when the model call or a scorer failed: such a row
    has no objective and is excluded from means, never counted as 0.

    ``task_cost_usd`` and ``latency_s`` are what this eval paid and waited for the task call: 0 for a cache hit.
    ``scorer_calls`` counts the judge calls this row paid for (cache hits are free), apart from the task call.
    ``call_cost_usd`` and ``call_latency_s`` are what the call costs and takes when it really runs (for a hit,
    the call that filled the cache entry), so they do not depend on what happened to be cached; ``None`` when
    unknown (no response, or an entry written without the figure). Scorer (judge) figures are apart and paid.

    A code task's row keeps its ``trace``: one :class:`~promptopt.tasks.Span` per prompt call, in call order;
    its task figures are the sums over the spans (``cache_hit``: every call was served by the cache).
    """

    model_config = ConfigDict(frozen=True)
    case_id: str
    repeat: int = 0
    input: dict[str, Any]
    expected: Any = None
    output: str | None = None
    parsed: Any = None
    parse_error: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    objective: float | None = None
    error: str | None = None
    latency_s: float = 0.0
    task_prompt_tokens: int = 0
    task_completion_tokens: int = 0
    scorer_prompt_tokens: int = 0
    scorer_completion_tokens: int = 0
    scorer_calls: int = 0
    task_cost_usd: float = 0.0
    scorer_cost_usd: float = 0.0
    cache_hit: bool = False
    call_cost_usd: float | None = None
    call_latency_s: float | None = None
    trace: tuple[Span, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_paid_call_is_its_own_figures(cls, data: Any) -> Any:
        # Rows recorded before the call figures existed: a call this eval paid for cost and took what was paid.
        if isinstance(data, dict) and not data.get("cache_hit") and data.get("output") is not None:
            data = dict(data)
            if data.get("call_cost_usd") is None:
                data["call_cost_usd"] = data.get("task_cost_usd", 0.0)
            if data.get("call_latency_s") is None:
                data["call_latency_s"] = data.get("latency_s", 0.0)
        return data


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class EvalSummary(BaseModel):
    """Aggregates of an eval over its rows.

    ``model_calls`` (task calls), ``scorer_calls`` (judge calls), the ``*_cost_usd`` and ``mean_latency_s`` are
    what the eval paid (cache hits are free and leave ``mean_latency_s`` out). ``task_tokens`` and
    ``scorer_tokens`` count every row, cached or not. ``cost_per_row_usd`` and ``latency_per_row_s`` are the
    configuration's own: the mean ``call_cost_usd`` and ``call_latency_s`` of the task call over the rows where
    they are known, cached or not (``None`` when no row's is known, and in summaries recorded before they
    existed). The search's cost and latency objectives use them.
    """

    model_config = ConfigDict(frozen=True)
    rows: int
    scores: dict[str, float | None]
    objective: float | None
    model_calls: int
    cache_hits: int
    errors: int
    task_tokens: int
    scorer_tokens: int
    cost_usd: float
    task_cost_usd: float
    scorer_cost_usd: float
    mean_latency_s: float | None
    wall_s: float
    cost_per_row_usd: float | None = None
    latency_per_row_s: float | None = None
    scorer_calls: int = 0
    top_answer_share: float | None = Field(
        None,
        description="Of the rows with a parsed answer, the share that gave the most common one (1.0: the same "
        "answer whatever the input, as a small model does when few-shot examples make it repeat one label); "
        "None without parsed answers, and in summaries recorded before it existed.",
    )

    @classmethod
    def from_rows(
        cls, rows: list[RowResult], scorer_names: list[str], *, model_calls: int, wall_s: float
    ) -> EvalSummary:
        ok = [r for r in rows if r.error is None]
        scores = {n: _mean([r.scores[n] for r in ok if n in r.scores]) for n in scorer_names}
        objective = _mean([r.objective for r in ok if r.objective is not None])
        task_cost = sum(r.task_cost_usd for r in rows)
        scorer_cost = sum(r.scorer_cost_usd for r in rows)
        latencies = [r.latency_s for r in rows if r.output is not None and not r.cache_hit]
        return cls(
            rows=len(rows),
            scores=scores,
            objective=objective,
            model_calls=model_calls,
            cache_hits=sum(r.cache_hit for r in rows),
            errors=len(rows) - len(ok),
            task_tokens=sum(r.task_prompt_tokens + r.task_completion_tokens for r in rows),
            scorer_tokens=sum(r.scorer_prompt_tokens + r.scorer_completion_tokens for r in rows),
            scorer_calls=sum(r.scorer_calls for r in rows),
            cost_usd=task_cost + scorer_cost,
            task_cost_usd=task_cost,
            scorer_cost_usd=scorer_cost,
            mean_latency_s=_mean(latencies),
            wall_s=wall_s,
            cost_per_row_usd=_mean([r.call_cost_usd for r in rows if r.call_cost_usd is not None]),
            latency_per_row_s=_mean([r.call_latency_s for r in rows if r.call_latency_s is not None]),
            top_answer_share=_top_share([r.parsed for r in ok if r.parsed is not None]),
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.rows if self.rows else 0.0


class EvalResult(BaseModel):
    """A finished eval: which config on which split, every row, and the summary."""

    model_config = ConfigDict(frozen=True)
    experiment_id: str
    config_hash: str
    split: str
    dataset_hash: str
    rows: tuple[RowResult, ...]
    summary: EvalSummary
    status: str = "finished"
    calibration: LabelCalibration | None = Field(
        None, description="A calibrated configuration's label calibration, as fitted by this eval or before it."
    )

    def objective_by_case(self) -> dict[str, float]:
        """Mean objective per case over repeats, for paired comparisons (rows with errors left out)."""
        acc: dict[str, list[float]] = {}
        for r in self.rows:
            if r.objective is not None and not math.isnan(r.objective):
                acc.setdefault(r.case_id, []).append(r.objective)
        return {k: sum(v) / len(v) for k, v in acc.items()}


def _top_share(answers: list[Any]) -> float | None:
    """The share of ``answers`` equal to the most common one (JSON values compared by their canonical text)."""
    if not answers:
        return None
    counts = Counter(a if isinstance(a, str) else json.dumps(a, sort_keys=True, default=str) for a in answers)
    return max(counts.values()) / len(answers)
