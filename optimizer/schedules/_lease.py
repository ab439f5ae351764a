"""Keeping a lease while a job runs: a thread renews it every third of its length, and says when it is lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from promptopt.schedules._store import Schedules
from promptopt.secrets import scrub_secrets

log = logging.getLogger("promptopt.schedules")


class LeaseKeeper:
    """Renews ``owner``'s lease on a schedule until :meth:`stop`; calls ``on_lost`` once if another scheduler
    took the job over (the lease ran out while this one could not renew it, e.g. the store was unreachable).

    A thread, not a task: the job's event loop may be busy in a synchronous store call for a while, and the
    lease must not run out because of it.
    """

    def __init__(
        self, schedules: Schedules, schedule_id: str, *, owner: str, lease_s: float, on_lost: Callable[[], None]
    ) -> None:
        self._schedules, self._id, self._owner, self._lease_s = schedules, schedule_id, owner, lease_s
        self._on_lost = on_lost
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"promptopt-lease-{schedule_id[:8]}")

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._lease_s)

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                held = self._schedules.renew(self._id, owner=self._owner, lease_s=self._lease_s)
            except Exception as exc:  # the store is unreachable: try again at the next beat
                log.warning("could not renew the lease of schedule %s: %s", self._id, scrub_secrets(str(exc)))
                continue
            if not held:
                self.lost = True
                log.error("lost the lease of schedule %s to another scheduler; stopping this run", self._id)
                self._on_lost()
                return
