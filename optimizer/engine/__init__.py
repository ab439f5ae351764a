"""The eval engine: render -> model backend -> parse -> scorers, cached, budgeted, recorded, resumable.

An eval runs on :class:`Services` (backend, cache, records, settings, budget, limiter), passed as one value;
:func:`evaluate_config` runs a spec's scorers over one split for any configuration, and :class:`Origin`
says which run, role and trial the recorded experiment belongs to.
"""

from promptopt.engine._evaluate import evaluate_config, evaluate_spec
from promptopt.engine._limits import Budget, BudgetUse, CallLimiter, LocalBudget, LocalLimiter
from promptopt.engine._parse import parse_label, parse_output
from promptopt.engine._result import EvalResult, EvalSummary, RowResult
from promptopt.engine._runner import (
    Evaluator,
    PaidCalls,
    answer_text,
    backoff_delay,
    fit_label_bias,
    paying,
    request_for,
)
from promptopt.engine._services import ExperimentRole, Origin, RecordSink, Services

__all__ = [
    "Budget",
    "BudgetUse",
    "CallLimiter",
    "EvalResult",
    "EvalSummary",
    "Evaluator",
    "ExperimentRole",
    "LocalBudget",
    "LocalLimiter",
    "Origin",
    "PaidCalls",
    "RecordSink",
    "RowResult",
    "Services",
    "backoff_delay",
    "evaluate_config",
    "evaluate_spec",
    "parse_label",
    "parse_output",
    "answer_text",
    "fit_label_bias",
    "paying",
    "request_for",
]
