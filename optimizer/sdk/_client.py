"""PromptClient: prompts for applications, cached in memory (TTL, stale-while-revalidate) and on disk."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from promptopt.config import candidate_from_json
from promptopt.errors import NotFound, OptimizeError
from promptopt.sdk._disk import DiskCopies, default_cache_dir
from promptopt.sdk._prompt import Prompt, PromptRef
from promptopt.sdk._sources import Fetched, HttpSource, PromptSource, StoreSource

if TYPE_CHECKING:
    from promptopt.store import Store

log = logging.getLogger("promptopt.sdk")
_MAX_RETRY_S = 5.0


class PromptUnavailable(OptimizeError):
    """The registry could not be reached and there is no last-known-good copy of the prompt."""


@dataclass
class _Entry:
    prompt: Prompt
    etag: str | None
    fetched: float  # time.monotonic() of the last answer from the source
    refreshing: bool = False
    retry_at: float = 0.0


class PromptClient:
    """Reads prompts from a promptopt server (``http(s)://...``) or straight from a store (``sqlite:///...``,
    ``postgresql://...``, or a :class:`~promptopt.store.Store`).

    Lookups by label are cached in memory for ``ttl_s``; past that the cached copy is still returned at once
    while one background thread fetches the new one (stale-while-revalidate). A pinned version is cached
    for good. Every successful fetch is also written to ``cache_dir`` (default
    ``~/.cache/promptopt/prompts``; ``False`` turns it off), so a process that starts while the registry is
    unreachable gets the last-known-good copy, with ``prompt.stale`` true and ``prompt.stale_reason`` saying
    why. Thread-safe. Importing it and looking up prompts never imports litellm, ray, optuna or dspy.

    Example::

        client = PromptClient("http://127.0.0.1:8080", token=os.environ.get("PROMPTS_TOKEN"))
        prompt = client.get("support-triage")  # the production label
        response = litellm.completion(**prompt.render(ticket=text))

    Args:
        url_or_store: Server URL, store URL, a ``Store``, or any :class:`PromptSource`.
        token: Bearer token for a server started with ``--protect-reads``.
        ttl_s: Seconds a label lookup is served from memory before it is revalidated.
        cache_dir: Folder of the last-known-good copies; ``False`` keeps none.
        timeout_s: Per-request timeout for a server.
    """

    def __init__(
        self,
        url_or_store: str | Store | PromptSource,
        *,
        token: str | None = None,
        ttl_s: float = 60.0,
        cache_dir: str | Path | None | bool = None,
        timeout_s: float = 5.0,
    ) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s must be >= 0, not {ttl_s}")
        self._source = _source(url_or_store, token=token, timeout_s=timeout_s)
        self.ttl_s = ttl_s
        self._disk = None if cache_dir is False else DiskCopies(_folder(cache_dir), self._source.location)
        self._entries: dict[PromptRef, _Entry] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return self._source.location

    def get(self, name: str, *, label: str | None = None, version: int | None = None) -> Prompt:
        """The version ``label`` points at (default ``production``), or the pinned ``version``: one prompt, or a
        code task's bundle (``.prompt(name)`` renders one of its prompts).

        Raises:
            NotFound: the registry says the prompt, label or version does not exist.
            PromptUnavailable: the registry cannot be reached and no copy is kept in memory or on disk.
            InputError: a malformed name, label or version.
        """
        ref = PromptRef.of(name, label, version)
        with self._lock:
            entry = self._entries.get(ref)
            if entry is not None:
                now = time.monotonic()
                fresh = (ref.pinned and not entry.prompt.stale) or now - entry.fetched < self.ttl_s
                if not fresh and not entry.refreshing and now >= entry.retry_at:
                    entry.refreshing = True
                    threading.Thread(
                        target=self._refresh, args=(ref, entry), daemon=True, name=f"promptopt-refresh-{ref.key}"
                    ).start()
                return entry.prompt
        return self._first_load(ref)

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> PromptClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _first_load(self, ref: PromptRef) -> Prompt:
        try:
            fetched = self._source.fetch(ref)
            assert fetched is not None  # no etag was sent
            prompt = _prompt(fetched, ref)
        except NotFound:
            raise
        except Exception as exc:  # unreachable, or a bad answer: fall back to the copy on disk
            return self._from_disk(ref, _reason(self._source.location, exc))
        self._keep(ref, _Entry(prompt, fetched.etag, time.monotonic()), fetched)
        return prompt

    def _from_disk(self, ref: PromptRef, reason: str) -> Prompt:
        copy = None if self._disk is None else self._disk.load(ref)
        if copy is None:
            where = "keeping none" if self._disk is None else f"none in {self._disk.folder}"
            raise PromptUnavailable(f"cannot get {ref.key}: {reason}; and no last-known-good copy ({where})")
        fetched, saved_at = copy
        try:
            prompt = _prompt(
                fetched,
                ref,
                fetched_at=saved_at,
                stale=f"{reason}; serving the last-known-good copy saved at {saved_at.isoformat(timespec='seconds')}",
            )
        except ValidationError as exc:
            raise PromptUnavailable(f"cannot get {ref.key}: {reason}; the copy on disk is unreadable: {exc}") from None
        now = time.monotonic()
        self._keep(ref, _Entry(prompt, fetched.etag, now - self.ttl_s, retry_at=now + self._retry_s), None)
        return prompt

    def _refresh(self, ref: PromptRef, entry: _Entry) -> None:
        try:
            fetched = self._source.fetch(ref, entry.etag)
        except Exception as exc:  # NotFound too: a running application keeps the prompt it had
            reason = _reason(self._source.location, exc)
            log.warning("serving a stale copy of %s: %s", ref.key, reason)
            since = entry.prompt.fetched_at.isoformat(timespec="seconds")
            stale = entry.prompt.model_copy(
                update={"stale": True, "stale_reason": f"{reason}; serving the copy fetched at {since}"}
            )
            self._keep(ref, _Entry(stale, entry.etag, entry.fetched, retry_at=time.monotonic() + self._retry_s), None)
            return
        if fetched is None:  # not modified: the copy we hold is current again
            prompt = entry.prompt.model_copy(
                update={"stale": False, "stale_reason": None, "fetched_at": datetime.now(UTC)}
            )
            self._keep(ref, _Entry(prompt, entry.etag, time.monotonic()), None)
            return
        self._keep(ref, _Entry(_prompt(fetched, ref), fetched.etag, time.monotonic()), fetched)

    def _keep(self, ref: PromptRef, entry: _Entry, fetched: Fetched | None) -> None:
        with self._lock:
            self._entries[ref] = entry
        if fetched is not None and self._disk is not None:
            self._disk.save(ref, fetched)

    @property
    def _retry_s(self) -> float:
        return min(max(self.ttl_s, 0.1), _MAX_RETRY_S)


def _folder(cache_dir: str | Path | None | bool) -> Path:
    return default_cache_dir() if cache_dir is None or isinstance(cache_dir, bool) else Path(cache_dir)


def _source(value: Any, *, token: str | None, timeout_s: float) -> PromptSource:
    if isinstance(value, PromptSource):
        return value
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return HttpSource(value, token=token, timeout_s=timeout_s)
    return StoreSource(value)


def _prompt(
    fetched: Fetched, ref: PromptRef, *, fetched_at: datetime | None = None, stale: str | None = None
) -> Prompt:
    return Prompt(
        name=fetched.name,
        version=fetched.version,
        label=ref.label,
        config_hash=fetched.config_hash,
        config=candidate_from_json(fetched.config),
        fetched_at=fetched_at or datetime.now(UTC),
        stale=stale is not None,
        stale_reason=stale,
    )


def _reason(location: str, exc: BaseException) -> str:
    from promptopt.secrets import scrub_secrets

    return scrub_secrets(f"{location} did not answer ({type(exc).__name__}: {exc})"[:500])
