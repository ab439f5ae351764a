"""What the logger queues: a log or a feedback entry as the JSON body the server takes, built from whatever an
application passed. A bad name or id refuses the record; a bad measurement is dropped, not worth losing a log."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from promptopt.names import is_label, is_log_id, is_prompt_name, is_version

Scrub = Callable[[dict[str, Any]], dict[str, Any]]
Event = tuple[str, dict[str, Any]]  # ("log" | "feedback", body)
# The limits of promptopt.logs (a test checks they agree): a record the server would refuse is caught here.
MAX_TEXT = 1_000_000
MAX_BATCH = 10_000


def log_body(
    scrub: Scrub,
    log_id: str,
    prompt_name: str,
    version: int | None,
    input: Any,
    output: str | None,
    *,
    model: str | None,
    latency_s: float | None,
    tokens: int | None,
    cost_usd: float | None,
    metadata: dict[str, Any] | None,
    label: str | None,
) -> dict[str, Any]:
    """The body of one logged call, its free-form parts (input, output, metadata, model) through ``scrub``.

    Raises:
        ValueError: ``prompt_name`` is not a prompt name or ``log_id`` not an id.
    """
    if not is_prompt_name(prompt_name):
        raise ValueError(f"{prompt_name!r} is not a prompt name")
    if not is_log_id(log_id):
        raise ValueError(f"id {log_id!r} is not an id (letters, digits, '_', '.', ':', '-')")
    body = scrub(
        {
            "input": _jsonable({} if input is None else input),
            "output": _text(output),
            "metadata": _jsonable(metadata or {}),
            "model": _text(model, 200),
        }
    )
    body.update(
        id=log_id,
        prompt=prompt_name,
        version=_version(version),
        label=_label(label),
        latency_s=_number(latency_s, float),
        tokens=_number(tokens, int),
        cost_usd=_number(cost_usd, float),
        created_at=_now(),
    )
    return body


def feedback_body(
    scrub: Scrub, feedback_id: str, log_id: str, *, score: float | None, label: str | None, corrected: str | None
) -> dict[str, Any]:
    """The body of one feedback entry, its label and corrected output through ``scrub``.

    Raises:
        ValueError: nothing given, or a score that is not a finite number.
    """
    if score is None and label is None and corrected is None:
        raise ValueError("give at least one of score, label or corrected")
    body = scrub({"label": _text(label, 200), "corrected": _text(corrected)})
    number = None if score is None else float(score)
    if number is not None and not math.isfinite(number):
        raise ValueError(f"score must be a finite number, not {score!r}")
    body.update(id=feedback_id, log_id=str(log_id), score=number, created_at=_now())
    return body


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON (non-finite floats and unknown objects become strings), so that sending and
    spooling never fail on what an application happened to pass."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 50:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def _number(value: Any, kind: type) -> Any:
    """A finite non-negative number of ``kind``, else ``None`` (a bad measurement is not worth losing a log)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else str(value)[:limit]


def _version(value: Any) -> int | None:
    return value if is_version(value) else None


def _label(value: Any) -> str | None:
    return value if is_label(value) else None


def _now() -> str:
    return datetime.now(UTC).isoformat()
