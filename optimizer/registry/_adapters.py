"""The LoRA adapter of a fine-tuned version travels with the store: kept in its ``adapter`` table when the
version is registered, and written back into the adapters folder when a version is read where it is missing."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from promptopt.errors import InputError, OptimizeError
from promptopt.models import ADAPTERS_ENV, adapter_file, finetuned_name, split_finetuned, write_adapter
from promptopt.registry._values import Lineage
from promptopt.store import AdapterTable, insert_ignoring_duplicates

_SOURCE = "prompt registry"
log = logging.getLogger("promptopt.registry")


class AdapterMismatch(OptimizeError):
    """An adapter's bytes are not the ones recorded under its key: another file, or a corrupt copy."""


def adapter_key(model: str) -> str | None:
    """The adapter key of a local fine-tune (``local/<base>+ft-<key>``); ``None`` for every other model."""
    base, key = split_finetuned(model)
    return key if key is not None and finetuned_name(base, key) == model else None


def save_adapter(session: Session, model: str, lineage: Lineage) -> None:
    """Keep the adapter of ``model`` in the store, once per key (nothing to do for a model that is not a local
    fine-tune, or when the store already holds the same file).

    Raises:
        InputError: the adapter is neither in the adapters folder nor in the store, or its file is not the one
            ``lineage.fine_tune`` records.
        AdapterMismatch: the store holds another file under the key.
    """
    key = adapter_key(model)
    if key is None:
        return
    path = adapter_file(key)
    if not path.is_file():
        if _stored_sha256(session, key) is None:
            raise InputError(
                _SOURCE,
                "config.model",
                f"the adapter of {model!r} is neither at {path} nor in the store; register it where it was "
                f"trained (or point {ADAPTERS_ENV} at the folder that holds it)",
            )
        return
    content = path.read_bytes()
    digest = _sha256(content)
    recorded = (lineage.fine_tune or {}).get("file_sha256")
    if recorded is not None and recorded != digest:
        raise InputError(
            _SOURCE,
            "lineage.fine_tune.file_sha256",
            f"{path} (sha256 {digest}) is not the adapter the run trained (sha256 {recorded}); train it again",
        )
    stored = _stored_sha256(session, key)
    if stored is None:
        dialect = session.get_bind().dialect.name
        values = {"key": key, "sha256": digest, "size": len(content), "content": content}
        insert = insert_ignoring_duplicates(dialect, AdapterTable.__table__, ["key"])  # type: ignore[attr-defined]
        session.execute(insert, [{**values, "created_at": datetime.now(UTC)}])
        stored = _stored_sha256(session, key)  # another writer may have stored the key meanwhile
    if stored != digest:
        raise AdapterMismatch(
            f"adapter {key}: the store holds another file under this key (sha256 {stored}) than {path} "
            f"(sha256 {digest}); a key names one set of weights, so one of them is not what was trained"
        )


def restore_adapter(engine: Engine, model: str) -> None:
    """Write the stored adapter of ``model`` into the adapters folder if it is not there. An adapter the store
    does not hold either, or a folder that cannot be written (a read-only server), is left missing and the
    version is still read: only running it needs the file, and the local provider's error then says where it
    looked and what to do.

    Raises:
        AdapterMismatch: the stored bytes do not have the sha256 recorded with them; nothing is written.
    """
    key = adapter_key(model)
    if key is None or adapter_file(key).is_file():
        return
    with Session(engine) as session:
        row = session.get(AdapterTable, key)
    if row is None:
        return
    digest = _sha256(row.content)
    if digest != row.sha256 or len(row.content) != row.size:
        raise AdapterMismatch(
            f"adapter {key} in the store is corrupt: its {len(row.content)} bytes have sha256 {digest}, not the "
            f"{row.sha256} ({row.size} bytes) recorded; register a version of {model!r} again from the trained file"
        )
    try:
        write_adapter(key, row.content)
    except OSError as exc:
        log.warning("could not write adapter %s of %r from the store: %s", key, model, exc)


def _stored_sha256(session: Session, key: str) -> str | None:
    return session.exec(select(col(AdapterTable.sha256)).where(AdapterTable.key == key)).first()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
