"""Last-known-good copies of prompts on local disk, so that an application starting while the registry is
unreachable still gets its prompts (marked stale)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from promptopt.sdk._prompt import PromptRef
from promptopt.sdk._sources import Fetched

log = logging.getLogger("promptopt.sdk")
_FORMAT = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/promptopt/prompts`` (``~/.cache/promptopt/prompts``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promptopt" / "prompts"


class DiskCopies:
    """One JSON file per source, prompt and label (or version), replaced atomically.

    A failed write is logged and otherwise ignored: the disk copy is a fallback, never a reason to fail a
    lookup that succeeded.
    """

    def __init__(self, folder: Path, location: str) -> None:
        self.folder = folder / hashlib.sha256(location.encode()).hexdigest()[:16]

    def _path(self, ref: PromptRef) -> Path:
        return self.folder / f"{ref.key}.json"

    def save(self, ref: PromptRef, fetched: Fetched) -> None:
        record = {"format": _FORMAT, "saved_at": datetime.now(UTC).isoformat(), **fetched.model_dump(mode="json")}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{ref.key}.", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    json.dump(record, file, ensure_ascii=False)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, self._path(ref))  # readers see the old file or the new one, never half of one
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("could not keep a last-known-good copy of %s in %s: %s", ref.key, self.folder, exc)

    def load(self, ref: PromptRef) -> tuple[Fetched, datetime] | None:
        """The saved copy and when it was saved, or ``None`` (no copy, or an unreadable one)."""
        try:
            record = json.loads(self._path(ref).read_text(encoding="utf-8"))
            if record.pop("format") != _FORMAT:
                return None
            saved_at = datetime.fromisoformat(record.pop("saved_at"))
            return Fetched.model_validate(record), saved_at
        except (OSError, ValueError, KeyError, TypeError):
            return None
