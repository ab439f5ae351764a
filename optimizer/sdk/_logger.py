"""PromptLogger: an application logs its model calls (and feedback on them) without ever waiting or failing.

``log()`` scrubs the record and appends it to an in-memory queue; a background thread sends the queue in
batches (``POST /v1/logs:bulk`` and ``/v1/feedback:bulk`` of ``optimize serve``, or straight into a store).
What cannot be sent is written to spool files on local disk (atomically) and sent first once the destination
answers again, by this process or the next one that logs to the same destination.

The pieces: the records (:mod:`._log_records`), the destinations (:mod:`._log_sinks`), the disk spool
(:mod:`._log_spool`) and the queue with its sending thread (:mod:`._log_sender`).

Light to import: no store, no HTTP client until the first batch leaves, never litellm, ray, optuna or dspy.
"""

from __future__ import annotations

import atexit
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.sdk._log_records import MAX_BATCH, Scrub, feedback_body, log_body
from promptopt.sdk._log_sender import LoggerStats, Sender
from promptopt.sdk._log_sinks import sink_for
from promptopt.sdk._log_spool import spool_for
from promptopt.secrets import scrub_record

if TYPE_CHECKING:
    from promptopt.sdk._prompt import Prompt
    from promptopt.sdk._task import TaskRun
    from promptopt.store import Store


class PromptLogger:
    """Logs an application's model calls, and feedback on them, to a promptopt server or a store.

    ``log`` and ``feedback`` return at once: they never block on the network and never raise. Records are
    scrubbed first (``scrub``; API-key patterns and credential-like keys by default), queued in memory (at
    most ``max_queue`` events: past that the oldest is dropped and counted), and sent by a background thread
    every ``flush_interval_s`` or as soon as ``batch_size`` are waiting. A batch that cannot be sent is
    written to ``spool_dir`` and sent first once the destination answers again; a logger started later on the
    same destination sends what an earlier process left there. A batch the destination refuses as invalid
    (HTTP 422) is narrowed down to the bad entries, which are dropped and counted as ``rejected``.

    Example::

        logger = PromptLogger("http://127.0.0.1:8080", token=os.environ["OPTIMIZE_SERVER_TOKEN"])
        log_id = logger.log(
            "support-triage",
            prompt.version,
            {"ticket": text},
            answer,
            model=prompt.config.model,
            latency_s=0.42,
            tokens=180,
        )
        logger.feedback(log_id, label="billing")

    Args:
        url_or_store: ``http(s)://`` server URL, a store URL (``sqlite:///...``, ``postgresql://...``) or a
            :class:`~promptopt.store.Store`.
        token: The server's bearer token (``optimize serve`` takes writes only with it).
        batch_size: Events per request.
        flush_interval_s: Longest wait before queued events are sent.
        max_queue: Most events kept in memory.
        spool_dir: Folder of unsent batches (default ``$XDG_CACHE_HOME/promptopt/log-spool/<destination>``);
            ``False`` keeps them in memory only (bounded by ``max_queue``).
        scrub: Applied to each record (``input``, ``output``, ``metadata``... as a dict) before it is queued;
            a scrub that raises drops the record (counted as rejected) rather than keep it unscrubbed.
        timeout_s: Per-request timeout.
    """

    def __init__(
        self,
        url_or_store: str | Store,
        *,
        token: str | None = None,
        batch_size: int = 100,
        flush_interval_s: float = 1.0,
        max_queue: int = 10_000,
        spool_dir: str | Path | bool | None = None,
        scrub: Scrub = scrub_record,
        timeout_s: float = 5.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH or max_queue < batch_size or flush_interval_s <= 0:
            raise ValueError(f"need 1 <= batch_size <= {MAX_BATCH}, max_queue >= batch_size and flush_interval_s > 0")
        self._sink = sink_for(url_or_store, token=token, timeout_s=timeout_s)
        self.batch_size, self.flush_interval_s, self.max_queue = batch_size, flush_interval_s, max_queue
        self._scrub = scrub
        self._sender = Sender(
            self._sink,
            spool_for(spool_dir, self._sink.location),
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            max_queue=max_queue,
        )
        self.stats: LoggerStats = self._sender.stats
        atexit.register(self.close)

    @property
    def location(self) -> str:
        return self._sink.location

    # -- never blocks, never raises ----------------------------------------------------------------------------
    def log(
        self,
        prompt_name: str,
        version: int | None,
        input: Any,
        output: str | None,
        *,
        model: str | None = None,
        latency_s: float | None = None,
        tokens: int | None = None,
        cost_usd: float | None = None,
        metadata: dict[str, Any] | None = None,
        label: str | None = None,
        id: str | None = None,
    ) -> str:
        """Queue one model call; returns its log id (give it to :meth:`feedback`)."""
        log_id = id or uuid.uuid4().hex
        try:
            self._sender.put(
                (
                    "log",
                    log_body(
                        self._scrub,
                        log_id,
                        prompt_name,
                        version,
                        input,
                        output,
                        model=model,
                        latency_s=latency_s,
                        tokens=tokens,
                        cost_usd=cost_usd,
                        metadata=metadata,
                        label=label,
                    ),
                )
            )
        except Exception as exc:  # an application's logging call must never fail it
            self._sender.reject(f"log of {prompt_name!r} not queued: {exc}")
        return log_id

    def log_task(
        self,
        version: Prompt,
        input: dict[str, Any],
        run: TaskRun,
        *,
        metadata: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> str:
        """Queue one input of a code task (a :func:`~promptopt.sdk.run_task` result) as one log of the
        version's name: the function's input and final output, its prompt calls under ``metadata.trace`` (each
        in the log format) and whether the code was the optimized one. Exported with ``optimize logs export``,
        such logs are rows a spec of the same code task reads as they are."""
        extra = {"trace": [s.log_record() for s in run.spans], "code_matches": run.code_matches}
        return self.log(
            version.name,
            version.version,
            input,
            run.text,
            model=version.config.model,
            latency_s=run.latency_s,
            tokens=run.tokens,
            metadata={**(metadata or {}), **extra},
            label=version.label,
            id=id,
        )

    def feedback(
        self, log_id: str, *, score: float | None = None, label: str | None = None, corrected: str | None = None
    ) -> None:
        """Queue feedback on a logged call: a score, a label, a corrected output (the latest entry wins)."""
        try:
            self._sender.put(
                (
                    "feedback",
                    feedback_body(self._scrub, uuid.uuid4().hex, log_id, score=score, label=label, corrected=corrected),
                )
            )
        except Exception as exc:
            self._sender.reject(f"feedback on {log_id!r} not queued: {exc}")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Send what is queued now; ``True`` when everything logged so far has reached the destination
        (``False``: some of it is still queued or spooled, e.g. the destination is down)."""
        return self._sender.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (spooling what cannot be sent) and stop the background thread. Idempotent."""
        if self._sender.close(timeout_s):
            atexit.unregister(self.close)

    def __enter__(self) -> PromptLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
