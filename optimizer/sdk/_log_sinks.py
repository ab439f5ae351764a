"""Where the logger's batches go: a promptopt server over HTTP, or a store written directly.

Both are imported lazily: httpx on the first batch sent, the store and :mod:`promptopt.logs` on the first batch
written, so that an application that logs over HTTP never loads SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptopt.secrets import mask_url

if TYPE_CHECKING:
    from promptopt.store import Store


class Rejected(Exception):
    """The destination refused the batch as invalid: sending it again cannot succeed."""


class Sink:
    """Where batches go. ``send`` raises :class:`Rejected` for an invalid batch; any other exception means
    "not now" (the batch is kept and sent again later)."""

    location: str

    def send(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


def sink_for(url_or_store: str | Store, *, token: str | None, timeout_s: float) -> Sink:
    """An :class:`HttpSink` for an ``http(s)://`` URL, else a :class:`StoreSink`."""
    if isinstance(url_or_store, str) and url_or_store.startswith(("http://", "https://")):
        return HttpSink(url_or_store, token, timeout_s)
    return StoreSink(url_or_store)


class HttpSink(Sink):
    """``POST /v1/logs:bulk`` and ``/v1/feedback:bulk`` of ``optimize serve``."""

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.location = url.rstrip("/")
        self._token, self._timeout_s = token, timeout_s
        self._client: Any = None

    def send(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        if self._client is None:
            import httpx  # on the first batch: an application that never logs never loads it

            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            self._client = httpx.Client(base_url=self.location, headers=headers, timeout=self._timeout_s)
        path, key = ("/v1/logs:bulk", "logs") if kind == "log" else ("/v1/feedback:bulk", "feedback")
        response = self._client.post(path, json={key: bodies})
        if response.status_code == 200:
            return
        message = f"HTTP {response.status_code} from {self.location}{path}: {response.text[:300]}"
        if response.status_code in (400, 413, 422):
            raise Rejected(message)
        raise ConnectionError(message)  # 401/403 (a token to fix), 404 (no logs route yet), 429, 5xx: later

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class StoreSink(Sink):
    """A :class:`~promptopt.logs.LogStore` over a store URL (opened on the first batch) or a given store."""

    def __init__(self, url_or_store: str | Store) -> None:
        self._url = url_or_store if isinstance(url_or_store, str) else None
        self._store: Any = None if isinstance(url_or_store, str) else url_or_store
        self._logs: Any = None
        self.location = mask_url(url_or_store) if isinstance(url_or_store, str) else str(url_or_store.url)

    def send(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        from pydantic import ValidationError

        from promptopt.errors import InputError
        from promptopt.logs import FeedbackBatch, LogBatch, LogStore

        if self._logs is None:
            if self._store is None:
                from promptopt.store import Store

                assert self._url is not None
                self._store = Store(self._url)
            self._logs = LogStore(self._store)
        try:
            if kind == "log":
                self._logs.add_logs(LogBatch(logs=bodies).logs)
            else:
                self._logs.add_feedback(FeedbackBatch(feedback=bodies).feedback)
        except (ValidationError, InputError) as exc:
            raise Rejected(str(exc)) from None

    def close(self) -> None:
        if self._url is not None and self._store is not None:
            self._store.dispose()
