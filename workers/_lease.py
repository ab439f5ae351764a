"""Budget leases: the cluster's budget hands out blocks of calls and dollars, which a trial spends locally and
gives back, unspent, when it ends. No Ray here; the actor and the worker wrap these classes.

A lease is never larger than what the budget has left, so leases together never pass a limit: no more calls
are sent than the call budget allows. Beyond what a call needs now, a lease adds at most half of what is
left, so that near the end of a budget the trials holding leases keep little that another trial could have
spent: a trial refused while another still holds unspent calls stops a few calls short of the budget, never
past it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from promptopt.engine import BudgetUse, LocalBudget
from promptopt.errors import BudgetExceeded

MAX_BLOCK = 256  # calls one lease may add beyond the call that asked for it


class Grant(BaseModel):
    """What one lease gives: calls, dollars and the wall time left then; or the budget's refusal."""

    model_config = ConfigDict(frozen=True)
    calls: int = 0
    usd: float = 0.0
    wall_left_s: float | None = None
    refusal: str | None = None


class LeaseLedger:
    """The cluster's budget as leases out of a :class:`LocalBudget`: what is leased counts as used until it
    is given back."""

    def __init__(self, limits: dict[str, Any], start: BudgetUse) -> None:
        self._limits = limits
        self._budget = LocalBudget(**limits, start=start)

    def lease(self, calls: int, usd: float, *, extra_calls: int = 0, extra_usd: float = 0.0) -> Grant:
        """``calls`` and ``usd`` or a refusal (the budget's own message); plus as much of the extras as
        leaves half of the rest for others."""
        try:
            self._budget.reserve(calls, usd)
        except BudgetExceeded as exc:
            return Grant(refusal=str(exc))
        b, used = self._budget, self._budget.used()
        if b.max_calls is not None:
            extra_calls = max(0, min(extra_calls, (b.max_calls - used.model_calls) // 2))
        if b.max_usd is not None:
            extra_usd = max(0.0, min(extra_usd, (b.max_usd - used.usd) / 2))
        try:
            self._budget.reserve(extra_calls, extra_usd)
        except BudgetExceeded:  # the wall time ran out in between: the call that asked still goes
            extra_calls, extra_usd = 0, 0.0
        wall_left = None if b.max_wall is None else max(0.0, b.max_wall - used.wall_s)
        return Grant(calls=calls + extra_calls, usd=usd + extra_usd, wall_left_s=wall_left)

    def give_back(self, calls: int, usd: float) -> None:
        """Return unspent calls and dollars (``usd`` is negative when calls cost more than estimated)."""
        used = self._budget.used()
        # LocalBudget only counts up: start a new one from what is used after the return.
        self._budget = LocalBudget(
            **self._limits,
            start=BudgetUse(model_calls=used.model_calls - calls, usd=used.usd - usd, wall_s=used.wall_s),
        )

    def used(self) -> BudgetUse:
        return self._budget.used()


Lease = Callable[..., Awaitable[Grant]]  # LeaseLedger.lease, reached asynchronously


class LeasePool:
    """One trial's part of the budget: calls are taken from what it leased, and a new lease is asked for only
    when that is spent (one request at a time). The first lease covers the calls the trial expects (up to
    :data:`MAX_BLOCK`), so a trial usually makes one lease and one return; a retry or a call beyond the
    expected ones leases just itself.

    Args:
        lease: ``await lease(calls, usd, extra_calls=, extra_usd=)`` returns a :class:`Grant`.
        expected: Calls the trial expects to make (rows x repeats).
    """

    def __init__(self, lease: Lease, *, expected: int) -> None:
        self._lease = lease
        self.calls, self.usd = 0, 0.0
        self._expected, self._taken = expected, 0
        self._deadline: float | None = None  # this machine's clock; None: no wall limit (or no lease yet)
        self._lock = asyncio.Lock()

    async def take(self, usd: float) -> None:
        """One call estimated at ``usd`` dollars out of the pool, leased first if needed.

        Raises:
            BudgetExceeded: the cluster's budget refused the lease.
        """
        while not self._covers(usd):
            async with self._lock:
                if not self._covers(usd):
                    await self._refill(usd)
        self.calls -= 1
        self.usd -= usd
        self._taken += 1

    def put_back(self, usd: float) -> None:
        """Undo a :meth:`take` whose call was not sent."""
        self.calls += 1
        self.usd += usd
        self._taken -= 1

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self.usd += reserved_usd - actual_usd

    def drain(self) -> tuple[int, float]:
        """Empty the pool; returns what to give back."""
        out = (self.calls, self.usd)
        self.calls, self.usd = 0, 0.0
        return out

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _covers(self, usd: float) -> bool:
        return self.calls >= 1 and self.usd >= usd and not self._expired()

    async def _refill(self, usd: float) -> None:
        sent = time.monotonic()
        # Past the local deadline the pool asks for a call even if it holds some: the budget decides.
        calls = 1 if self.calls < 1 or self._expired() else 0
        extra = max(0, min(self._expected - self._taken - max(self.calls, 0) - 1, MAX_BLOCK))
        grant = await self._lease(calls, max(0.0, usd - self.usd), extra_calls=extra, extra_usd=extra * usd)
        if grant.refusal is not None:
            raise BudgetExceeded(grant.refusal)
        self.calls += grant.calls
        self.usd += grant.usd
        self._deadline = None if grant.wall_left_s is None else sent + grant.wall_left_s
