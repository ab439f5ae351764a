"""Where the SDK reads prompts from: the HTTP server or the store itself, behind one small interface."""

from __future__ import annotations

import abc
import threading
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from promptopt.errors import NotFound, OptimizeError
from promptopt.sdk._prompt import PromptRef

if TYPE_CHECKING:
    from promptopt.store import Store


class Fetched(BaseModel):
    """A prompt version as a source returns it (the configuration still as JSON)."""

    model_config = ConfigDict(frozen=True)
    name: str
    version: int
    config: dict[str, Any]
    config_hash: str
    etag: str | None = None


class PromptSourceError(OptimizeError):
    """The source answered, but not with the prompt (an HTTP error other than 404, a bad answer)."""


class PromptSource(abc.ABC):
    """Contract:

    * :meth:`fetch` returns the version ``ref`` selects now, or ``None`` when ``etag`` is given and still
      current (nothing changed).
    * It raises :class:`~promptopt.errors.NotFound` only when the source says the prompt, label or version
      does not exist; any other exception means "could not answer", and the client serves its last-known-good
      copy instead.
    * It is called from several threads at once (background refreshes).
    * ``location`` names it in messages and keys the disk copies; it never holds a credential.
    """

    location: str

    @abc.abstractmethod
    def fetch(self, ref: PromptRef, etag: str | None = None) -> Fetched | None:
        """The version ``ref`` selects, or ``None`` if ``etag`` is current."""

    def close(self) -> None:
        """Release connections; default does nothing."""


class HttpSource(PromptSource):
    """``GET /v1/prompts/{name}?label=...`` on a promptopt server, revalidated with ``If-None-Match``."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 5.0) -> None:
        import httpx  # on first use: an application reading from the store never needs it

        self.location = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.location, headers=headers, timeout=timeout_s)

    def fetch(self, ref: PromptRef, etag: str | None = None) -> Fetched | None:
        params = {"label": ref.label} if ref.version is None else {"version": str(ref.version)}
        response = self._client.get(
            f"/v1/prompts/{ref.name}", params=params, headers={"If-None-Match": etag} if etag else {}
        )
        if response.status_code == 304:
            return None
        if response.status_code == 404:
            raise NotFound(_message(response))
        if response.status_code != 200:
            raise PromptSourceError(f"HTTP {response.status_code}: {_message(response)}")
        body = response.json()
        return Fetched(
            name=body["name"],
            version=body["version"],
            config=body["config"],
            config_hash=body["config_hash"],
            etag=response.headers.get("etag"),
        )

    def close(self) -> None:
        self._client.close()


def _message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:  # not our JSON error body (a proxy's page): say what came back
        return str(response.text[:200] or response.reason_phrase)


class StoreSource(PromptSource):
    """Reads the registry's tables directly (``sqlite:///...``, ``postgresql://...``).

    The store is opened on the first fetch, and again after a failure, so a client can start while the
    database is down.
    """

    def __init__(self, url_or_store: str | Store) -> None:
        self._url = url_or_store if isinstance(url_or_store, str) else None
        self._store = None if isinstance(url_or_store, str) else url_or_store
        self._registry: Any = None
        self._opening = threading.Lock()
        self.location = _masked(url_or_store)

    def fetch(self, ref: PromptRef, etag: str | None = None) -> Fetched | None:
        registry = self._open()
        version = registry.get(ref.name, version=ref.version, label=ref.label)
        tag = f"{version.config_hash[:32]}-{version.version}"
        if tag == etag:
            return None
        return Fetched(
            name=version.name,
            version=version.version,
            config_hash=version.config_hash,
            etag=tag,
            config=version.config.model_dump(mode="json", by_alias=True),
        )

    def _open(self) -> Any:
        with self._opening:  # refresh threads may ask at once: open one store
            if self._registry is None:
                from promptopt.registry import Registry
                from promptopt.store import Store

                if self._store is None:
                    assert self._url is not None
                    self._store = Store(self._url)
                self._registry = Registry(self._store)
            return self._registry

    def close(self) -> None:
        if self._url is not None and self._store is not None:
            self._store.dispose()


def _masked(url_or_store: Any) -> str:
    if not isinstance(url_or_store, str):
        return str(url_or_store.url)
    from promptopt.secrets import mask_url

    return mask_url(url_or_store)
