"""One budget for the whole cluster: an actor holds it, workers reserve through a proxy, the driver syncs."""

from __future__ import annotations

from typing import Any

import ray  # noqa: TID251 (workers/ is the Ray adapter)

from promptopt.engine import Budget, BudgetUse, LocalBudget
from promptopt.errors import BudgetExceeded


@ray.remote(num_cpus=0)
class BudgetActor:
    """Holds a :class:`LocalBudget`. A refusal comes back as its message (exceptions pickle poorly)."""

    def __init__(self, limits: dict[str, Any], start: BudgetUse) -> None:
        self._limits = limits
        self._budget = LocalBudget(**limits, start=start)

    def restart(self, start: BudgetUse) -> None:
        self._budget = LocalBudget(**self._limits, start=start)

    def reserve(self, calls: int, usd: float) -> str | None:
        try:
            self._budget.reserve(calls, usd)
        except BudgetExceeded as exc:
            return str(exc)
        return None

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self._budget.settle(reserved_usd, actual_usd)

    def used(self) -> BudgetUse:
        return self._budget.used()


class RayBudget(Budget):
    """The budget inside a worker: every operation is a blocking round trip to the :class:`BudgetActor`,
    so trials on all nodes together never pass a limit."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    def reserve(self, calls: int, usd: float) -> None:
        refusal = ray.get(self._actor.reserve.remote(calls, usd))
        if refusal is not None:
            raise BudgetExceeded(refusal)

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        ray.get(self._actor.settle.remote(reserved_usd, actual_usd))

    def used(self) -> BudgetUse:
        return ray.get(self._actor.used.remote())  # type: ignore[no-any-return]


class BudgetLink:
    """The driver's side: the actor starts each batch from the driver budget's usage, and the batch's
    spending is added back to the driver budget afterwards, so the driver sees what the cluster spent."""

    def __init__(self, budget: LocalBudget) -> None:
        self.budget = budget
        limits = {"model_calls": budget.max_calls, "usd": budget.max_usd, "wall_s": budget.max_wall}
        self._start = budget.used()
        self.actor = BudgetActor.remote(limits, self._start)

    def begin_batch(self) -> None:
        self._start = self.budget.used()
        ray.get(self.actor.restart.remote(self._start))

    def end_batch(self) -> None:
        after: BudgetUse = ray.get(self.actor.used.remote())
        absorb(self.budget, after.model_calls - self._start.model_calls, after.usd - self._start.usd)

    def close(self) -> None:
        ray.kill(self.actor)


def absorb(budget: LocalBudget, calls: int, usd: float) -> None:
    """Count ``calls`` and ``usd`` that were already checked against the limits elsewhere."""
    budget.settle(0.0, usd)
    try:
        budget.reserve(calls, 0.0)
    except BudgetExceeded:  # the wall-time limit refuses even calls already made; count them anyway
        with budget._lock:
            budget._calls += calls
