"""Test and benchmark helpers that users may reuse: a loopback OpenAI-compatible fake server, a loopback fake of
OpenAI's fine-tuning API (:class:`FakeFineTuneServer`, whose jobs end as a :class:`JobScript` says), and the
contract suites of the extension points, to run against your own implementation.

Each suite is a test class whose tests need one fixture, the implementation under test:

* :class:`DimensionContract` (fixture ``dimension_case``, a :class:`DimensionCase`) for a
  :class:`promptopt.search_spaces.Dimension`;
* :class:`BudgetContract` (fixture ``open_budget(model_calls=, usd=, wall_s=)`` returning a
  :class:`SharedBudget`; :class:`PlainBudget` wraps a plain :class:`promptopt.engine.Budget`) and
  :class:`LimiterContract` (fixture ``make_limiter(limit)``) for budgets and per-model limiters;
* :class:`ExecutorContract` (fixture ``make_executor(bench)``, given an :class:`ExecutorBench`) for a
  :class:`promptopt.search.TrialExecutor`.

Example, in a test module of a plug-in (pytest collects the inherited tests)::

    import pytest
    from promptopt.testing import BudgetContract, PlainBudget


    @pytest.fixture
    def open_budget():
        return lambda **limits: PlainBudget(RedisBudget("redis://127.0.0.1:6379/0", **limits))


    class TestRedisBudget(BudgetContract):
        pass

The suites import neither pytest nor Ray, and ``import promptopt.testing`` loads them only when one is named
(the fake server stays quick to start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from promptopt.testing._fake_finetune_server import FakeFineTuneServer, JobScript, base_or_tuned
from promptopt.testing._fake_server import FakeOpenAIServer, keyword_answer

if TYPE_CHECKING:
    from promptopt.testing._budget_suite import BudgetContract, Lane, LimiterContract, PlainBudget, SharedBudget
    from promptopt.testing._dimension_suite import DimensionCase, DimensionContract
    from promptopt.testing._executor_suite import ExecutorBench, ExecutorContract

_SUITES = {
    "BudgetContract": "_budget_suite",
    "Lane": "_budget_suite",
    "LimiterContract": "_budget_suite",
    "PlainBudget": "_budget_suite",
    "SharedBudget": "_budget_suite",
    "DimensionCase": "_dimension_suite",
    "DimensionContract": "_dimension_suite",
    "ExecutorBench": "_executor_suite",
    "ExecutorContract": "_executor_suite",
}

__all__ = [
    "BudgetContract",
    "DimensionCase",
    "DimensionContract",
    "ExecutorBench",
    "ExecutorContract",
    "FakeFineTuneServer",
    "FakeOpenAIServer",
    "JobScript",
    "Lane",
    "LimiterContract",
    "PlainBudget",
    "SharedBudget",
    "base_or_tuned",
    "keyword_answer",
]


def __getattr__(name: str) -> Any:
    if name not in _SUITES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_SUITES[name]}"), name)
