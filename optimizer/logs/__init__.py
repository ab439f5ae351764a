"""Production logs: what applications logged through :class:`promptopt.sdk.PromptLogger` (and feedback on it),
online scores of reference-free scorers, per-version numbers, and datasets made from logs.

``promptopt.logs.router(store_factory, auth)`` serves the HTTP ingestion routes; it is imported on first use, so
that writing logs straight into a store never loads FastAPI.

Example:
    >>> from promptopt.logs import LogQuery, export_dataset
    >>> export_dataset(
    ...     get_store(), LogQuery(prompt="support-triage", with_feedback=True), "fresh.jsonl", require_expected=True
    ... )  # doctest: +SKIP
"""

from typing import Any

from promptopt.logs._dataset import dataset_from_logs, dataset_hash, export_dataset, log_record, write_jsonl
from promptopt.logs._scoring import ascore_logs, in_sample, score_logs
from promptopt.logs._store import LogStore
from promptopt.logs._values import (
    ExportResult,
    Feedback,
    FeedbackBatch,
    FeedbackIn,
    IngestResult,
    LogBatch,
    LogEntry,
    LogIn,
    LogQuery,
    ScoreReport,
    VersionStats,
)
from promptopt.names import LABEL_PATTERN, NAME_PATTERN  # re-exported: the rules a log is checked against
from promptopt.names import LOG_ID_PATTERN as ID_PATTERN

__all__ = [
    "ID_PATTERN",
    "LABEL_PATTERN",
    "NAME_PATTERN",
    "ExportResult",
    "Feedback",
    "FeedbackBatch",
    "FeedbackIn",
    "IngestResult",
    "LogBatch",
    "LogEntry",
    "LogIn",
    "LogQuery",
    "LogStore",
    "ScoreReport",
    "VersionStats",
    "ascore_logs",
    "dataset_from_logs",
    "dataset_hash",
    "export_dataset",
    "in_sample",
    "log_record",
    "router",
    "score_logs",
    "write_jsonl",
]


def __getattr__(name: str) -> Any:
    # The HTTP router imports FastAPI; an application that logs into a store should not pay for that.
    if name == "router":
        from promptopt.logs._routes import router

        return router
    raise AttributeError(f"module 'promptopt.logs' has no attribute {name!r}")
