"""The logger's disk spool: batches that could not be sent, kept until the destination answers again.

One JSON file per batch, named so that the files sort oldest first. A file is written to a temporary name,
synced and renamed: a crash leaves a whole file or none. A file being sent is locked (``flock``), so two
processes sharing the folder do not send it at once; a resend after a crash is harmless because the destination
ignores ids it has already stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TextIO

from promptopt.sdk._log_records import Event

log = logging.getLogger("promptopt.sdk")
_FORMAT = 1


def spool_for(spool_dir: str | Path | bool | None, location: str) -> Spool | None:
    """The spool in ``spool_dir``, by default ``$XDG_CACHE_HOME/promptopt/log-spool/<hash of location>``;
    ``None`` (no spool) for ``False``."""
    if spool_dir is False:
        return None
    if spool_dir is not None and not isinstance(spool_dir, bool):
        return Spool(Path(spool_dir))
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promptopt" / "log-spool"
    return Spool(root / hashlib.sha256(location.encode()).hexdigest()[:16])


class Spool:
    """Batches of events in a folder, one file each (see the module's docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = 0

    def write(self, events: list[Event]) -> bool:
        """Keep ``events`` as one new file; ``False`` (logged) when the disk refuses."""
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.json"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".spool-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    json.dump({"format": _FORMAT, "events": events}, file, ensure_ascii=False)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, self.folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.error("could not spool %d log event(s) to %s: %s", len(events), self.folder, exc)
            return False
        return True

    def files(self) -> list[Path]:
        """The spool files, oldest first."""
        try:
            return sorted(self.folder.glob("*.json"))
        except OSError:
            return []

    def pending(self) -> int:
        return len(self.files())


class LockedSpoolFile:
    """Open a spool file under an exclusive non-blocking lock; yields its events, or ``None`` when another
    process holds it, it is gone, or it is unreadable (then it is set aside as ``.bad``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def __enter__(self) -> list[Event] | None:
        try:
            self._file = file = open(self.path, encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        except OSError:
            return None
        try:
            import fcntl

            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): resends are idempotent anyway
            pass
        except OSError:
            return None
        if not self.path.exists():  # sent and removed by the process that held the lock before us
            return None
        try:
            data = json.load(file)
            return [(kind, body) for kind, body in data["events"]]
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable spool file %s set aside: %s", self.path, exc)
            self.path.rename(self.path.with_suffix(".bad"))
            return None

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
