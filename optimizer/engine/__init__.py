"""The eval engine: render -> model backend -> parse -> scorers, cached, budgeted, recorded, resumable."""

from promptopt.engine._limits import Budget, BudgetUse, CallLimiter, LocalBudget, LocalLimiter
from promptopt.engine._parse import parse_label, parse_output
from promptopt.engine._result import EvalResult, EvalSummary, RowResult
from promptopt.engine._runner import Evaluator, PaidCalls, backoff_delay, paying, request_for

__all__ = ["Budget", "BudgetUse", "CallLimiter", "EvalResult", "EvalSummary", "Evaluator", "LocalBudget",
           "LocalLimiter", "PaidCalls", "RowResult", "backoff_delay", "parse_label", "parse_output", "paying",
           "request_for"]
