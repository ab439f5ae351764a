"""Datasets from production logs: a query's logs as eval rows (``input``, ``expected``, ``metadata``), written
once as content-hashed JSONL that a spec can name as its data."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from promptopt.data import content_hash
from promptopt.errors import InputError
from promptopt.logs._store import LogStore
from promptopt.logs._values import ExportResult, LogEntry, LogQuery
from promptopt.store import Store


def log_record(entry: LogEntry) -> dict[str, Any]:
    """One log as an eval row: its input (an object of template fields; any other value under ``input``),
    the reference its feedback gives (corrected output, else label; ``None`` without feedback), and metadata
    naming the log, the version that answered and the feedback (the application's own under ``app``)."""
    feedback = entry.feedback
    metadata: dict[str, Any] = {
        "log_id": entry.id,
        "prompt": entry.prompt,
        "version": entry.version,
        "label": entry.label,
        "model": entry.model,
        "created_at": entry.created_at.isoformat(),
        "output": entry.output,
        "feedback_score": None if feedback is None else feedback.score,
    }
    if entry.metadata:
        metadata["app"] = entry.metadata
    inputs = entry.input if isinstance(entry.input, dict) and entry.input else {"input": entry.input}
    return {"input": inputs, "expected": None if feedback is None else feedback.expected, "metadata": metadata}


def dataset_from_logs(store: Store, query: LogQuery, *, require_expected: bool = False) -> list[dict[str, Any]]:
    """The logs ``query`` selects as eval rows, oldest first (see :func:`log_record`).

    ``require_expected`` keeps only the logs whose feedback gives a reference (a label or a corrected output).

    Example:
        >>> query = LogQuery(prompt="support-triage", with_feedback=True)
        >>> rows = dataset_from_logs(get_store(), query)  # doctest: +SKIP
    """
    records = [log_record(e) for e in LogStore(store).query(query)]
    return [r for r in records if r["expected"] is not None] if require_expected else records


def dataset_hash(records: list[dict[str, Any]]) -> str:
    """The content hash of a dataset's records (the same records give the same hash, in any process)."""
    return content_hash(records)


def write_jsonl(records: list[dict[str, Any]], out: Path) -> ExportResult:
    """Write ``records`` to ``out`` atomically, once: an existing file with the same content is left as it is,
    one with other content is never overwritten (a dataset, once named by its hash, does not change).

    Raises:
        InputError: ``out`` exists with other content, or cannot be written.
    """
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    digest = dataset_hash(records)
    result = ExportResult(
        path=str(out),
        hash=digest,
        records=len(records),
        with_expected=sum(1 for r in records if r["expected"] is not None),
    )
    if out.exists():
        if out.read_text(encoding="utf-8") == text:
            return result
        raise InputError(
            str(out),
            "",
            "exists with other content; a dataset is never overwritten, so choose "
            "another file name (e.g. one with the hash in it)",
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(str(out), "", f"cannot write the dataset: {exc.strerror or exc}") from None
    return result


def export_dataset(store: Store, query: LogQuery, out: str | Path, *, require_expected: bool = False) -> ExportResult:
    """Select logs with ``query`` and write them to ``out`` as JSONL eval rows; returns the content hash.

    Raises:
        InputError: no log matches, or ``out`` exists with other content.
    """
    records = dataset_from_logs(store, query, require_expected=require_expected)
    if not records:
        raise InputError(
            "logs query",
            "",
            "no log matches the query"
            + (" with a label or corrected output in its feedback" if require_expected else "")
            + "; widen --since/--until or drop a filter",
        )
    return write_jsonl(records, Path(out))
