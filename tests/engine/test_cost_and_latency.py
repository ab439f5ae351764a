"""Paid against own figures: a cache hit is free and instant for the eval that reads it, but its row and the
summary still say what the task call costs and takes when it really runs (the search's objectives use that)."""

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import diskcache
import pytest
import sqlalchemy as sa

from promptopt.cache import DiskResponseCache
from promptopt.engine import Evaluator, LocalBudget, Services
from promptopt.models import ScriptedBackend
from promptopt.models._base import ModelRequest, ModelResponse
from promptopt.scorers._base import ScoreInput, Scorer, ScoreResult
from promptopt.spec import EvalSettings
from promptopt.store import get_store
from promptopt.store._engine import create_store_engine
from promptopt.store._migrate import upgrade
from promptopt.store._tables import ExperimentTable, RowTable
from promptopt.store._url import resolve_url
from tests.engine.helpers import REVIEWS, Exact, label_config, oracle, split_of

PRICE, LATENCY = 0.002, 0.25  # what the fake task call costs and reports it took (not slept)


@dataclass
class Priced(ScriptedBackend):
    """A price per completion token and a reported latency; records what it was asked to estimate."""

    estimated: list[tuple[str, int]] = field(default_factory=list)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        response = await super().complete(request)
        return response.model_copy(
            update={"cost_usd": self._price(request, response.completion_tokens), "latency_s": LATENCY}
        )

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        self.estimated.append((request.messages[-1]["content"], completion_tokens))
        return self._price(request, completion_tokens)

    @staticmethod
    def _price(request: ModelRequest, completion_tokens: int) -> float:
        return (10 if request.model == "fake/judge" else 1) * PRICE * completion_tokens


class Judge(Scorer):
    """A judge that asks a model through the evaluator (its calls are cached and budgeted too)."""

    name, weight = "judge", 1.0

    def __init__(self, backend) -> None:
        self.backend = backend

    async def score(self, row: ScoreInput) -> ScoreResult:
        prompt = {"role": "user", "content": f"judge {row.input['text']}: {row.output}"}
        reply = await self.backend.complete(ModelRequest(model="fake/judge", messages=(prompt,)))
        return ScoreResult(
            value=1.0,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost_usd=reply.cost_usd,
        )


def evaluate(backend, cache, *, budget=None, store=None, judge=False, split=None):
    evaluator = Evaluator(
        Services(backend=backend, cache=cache, budget=budget, records=store, settings=EvalSettings(concurrency=2))
    )
    scorers = [Exact()] + ([Judge(evaluator.as_backend())] if judge else [])
    return asyncio.run(
        evaluator.run(label_config(), split or split_of(REVIEWS[:4]), scorers, name="t", dataset_hash="d")
    )


def test_a_hit_is_free_and_instant_but_keeps_what_the_call_costs_and_takes(tmp_path):
    backend = Priced(oracle)
    cold = evaluate(backend, DiskResponseCache(tmp_path))
    budget = LocalBudget(usd=1.0, model_calls=100)
    warm = evaluate(backend, DiskResponseCache(tmp_path), budget=budget)
    assert len(backend.calls) == 4  # the warm eval sent nothing

    for row in cold.rows:
        assert not row.cache_hit and row.task_cost_usd == row.call_cost_usd == PRICE
        assert row.latency_s == row.call_latency_s == LATENCY
    for row in warm.rows:
        assert row.cache_hit and row.task_cost_usd == 0.0 and row.latency_s == 0.0  # paid
        assert row.call_cost_usd == PRICE and row.call_latency_s == LATENCY  # the configuration's own

    assert (cold.summary.model_calls, cold.summary.cost_usd) == (4, pytest.approx(4 * PRICE))
    assert cold.summary.mean_latency_s == LATENCY
    assert (warm.summary.model_calls, warm.summary.cost_usd, warm.summary.mean_latency_s) == (0, 0.0, None)
    assert budget.used().model_calls == 0 and budget.used().usd == 0.0  # the budget saw no spending
    for s in (cold.summary, warm.summary):
        assert s.cost_per_row_usd == pytest.approx(PRICE) and s.latency_per_row_s == pytest.approx(LATENCY)


def test_judge_figures_stay_apart_from_the_task_call(tmp_path):
    backend = Priced(oracle)
    cold = evaluate(backend, DiskResponseCache(tmp_path), judge=True)
    warm = evaluate(backend, DiskResponseCache(tmp_path), judge=True)
    assert len(backend.calls) == 8  # 4 task calls and 4 judge calls, all in the cold eval
    judge_price = 10 * PRICE * 1  # the judge answers one word, like the task
    for c, w in zip(cold.rows, warm.rows, strict=True):
        assert c.scorer_cost_usd == pytest.approx(judge_price) and w.scorer_cost_usd == 0.0  # paid
        assert c.call_cost_usd == w.call_cost_usd == PRICE  # the task call only, never the judge's
        assert (c.scorer_prompt_tokens, c.scorer_completion_tokens) == (w.scorer_prompt_tokens, 1)
        assert c.scorer_prompt_tokens != c.task_prompt_tokens
    assert cold.summary.scorer_cost_usd == pytest.approx(4 * judge_price) and warm.summary.cost_usd == 0.0
    assert cold.summary.cost_per_row_usd == warm.summary.cost_per_row_usd == pytest.approx(PRICE)
    assert cold.summary.task_tokens == warm.summary.task_tokens != cold.summary.scorer_tokens
    # Judge calls are counted apart from task calls, and only when paid.
    assert [r.scorer_calls for r in cold.rows] == [1] * 4 and [r.scorer_calls for r in warm.rows] == [0] * 4
    assert (cold.summary.model_calls, cold.summary.scorer_calls) == (4, 4)
    assert (warm.summary.model_calls, warm.summary.scorer_calls) == (0, 0)


def _strip(directory, *keys: str, where=lambda text: True) -> None:
    """Rewrite entries as a writer that kept no cost or latency would have left them."""
    with diskcache.Cache(str(directory)) as raw:
        for key in list(raw):
            entry = json.loads(raw[key])
            if where(entry["text"]):
                raw[key] = json.dumps({k: v for k, v in entry.items() if k not in keys})


def test_an_entry_without_figures_loads_with_cost_from_the_backend_and_latency_unknown(tmp_path):
    backend = Priced(oracle)
    evaluate(backend, DiskResponseCache(tmp_path))
    _strip(tmp_path, "cost_usd", "latency_s")
    backend.estimated.clear()
    warm = evaluate(backend, DiskResponseCache(tmp_path))
    assert len(backend.calls) == 4 and all(r.cache_hit for r in warm.rows)  # still hits: nothing paid again
    assert sorted(backend.estimated) == sorted((text, 1) for text, _ in REVIEWS[:4])  # the stored tokens
    assert all(r.call_cost_usd == PRICE and r.call_latency_s is None for r in warm.rows)
    assert warm.summary.cost_per_row_usd == pytest.approx(PRICE)
    assert warm.summary.latency_per_row_s is None  # unknown, not 0


def test_the_latency_per_row_is_the_mean_over_the_rows_that_know_it(tmp_path):
    backend, split = Priced(oracle), split_of(REVIEWS[:2] + REVIEWS[6:8])
    evaluate(backend, DiskResponseCache(tmp_path), split=split)
    _strip(tmp_path, "latency_s", where=lambda text: text == "negative")  # the two "bad film" rows
    mixed = evaluate(backend, DiskResponseCache(tmp_path), split=split)
    assert [r.call_latency_s for r in mixed.rows] == [LATENCY, LATENCY, None, None]
    assert mixed.summary.latency_per_row_s == pytest.approx(LATENCY)


def test_rows_keep_both_figures_in_the_store(tmp_path, sqlite_url):
    backend, store = Priced(oracle), get_store(sqlite_url)
    cold, warm = (evaluate(backend, DiskResponseCache(tmp_path), store=store) for _ in range(2))
    assert not any(r.cache_hit for r in cold.rows) and all(r.cache_hit for r in warm.rows)
    for result in (cold, warm):
        assert store.get_rows(result.experiment_id) == list(result.rows)


def test_rows_recorded_before_the_figures_read_sensibly(sqlite_url):
    """A store at revision 0004 (no call figures) upgraded: a paid row's figures are what it paid, a hit's and
    a failed row's are unknown (never 0)."""
    engine = create_store_engine(resolve_url(sqlite_url))
    upgrade(engine, "0004")
    exp_id = "e" * 32
    base = {
        "experiment_id": exp_id,
        "input": {},
        "scores": {},
        "repeat": 0,
        "output": "x",
        "error": None,
        "task_prompt_tokens": 7,
        "task_completion_tokens": 1,
        "scorer_prompt_tokens": 0,
        "scorer_completion_tokens": 0,
        "scorer_cost_usd": 0.0,
    }
    experiment = {
        "id": exp_id,
        "key": "k",
        "name": "t",
        "status": "running",
        "config": {},
        "config_hash": "h",
        "model": "fake/model",
        "split": "validation",
        "dataset_hash": "d",
        "created_at": datetime.now(UTC),
    }
    with engine.begin() as connection:
        # The columns a writer at 0004 knew, not today's tables (whose newer columns have defaults).
        old_experiment = sa.table(
            "experiment",
            *(
                sa.column(n, ExperimentTable.__table__.c[n].type)  # type: ignore[attr-defined]
                for n in experiment
            ),
        )
        connection.execute(old_experiment.insert(), [experiment])
        known = [*base, "case_id", "task_cost_usd", "latency_s", "cache_hit"]
        old_row = sa.table("row", *(sa.column(n, RowTable.__table__.c[n].type) for n in known))  # type: ignore[attr-defined]
        connection.execute(
            old_row.insert(),
            [
                {**base, "case_id": "paid", "task_cost_usd": 0.002, "latency_s": 0.3, "cache_hit": False},
                {**base, "case_id": "hit", "task_cost_usd": 0.0, "latency_s": 0.3, "cache_hit": True},
                {
                    **base,
                    "case_id": "failed",
                    "output": None,
                    "error": "model call failed",
                    "task_cost_usd": 0.0,
                    "latency_s": 0.0,
                    "cache_hit": False,
                },
            ],
        )
    engine.dispose()
    rows = {r.case_id: r for r in get_store(sqlite_url).get_rows(exp_id)}  # opening the store upgrades it
    assert (rows["paid"].call_cost_usd, rows["paid"].call_latency_s) == (0.002, 0.3)
    assert (rows["hit"].call_cost_usd, rows["hit"].call_latency_s) == (None, None)
    assert (rows["failed"].call_cost_usd, rows["failed"].call_latency_s) == (None, None)
