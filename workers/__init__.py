"""Trials on a Ray cluster: the only package that imports Ray.

:func:`ray_executor_factory` gives :class:`promptopt.search.SearchRun` a :class:`RayExecutor`, which runs each
trial as a Ray task. What must hold across the cluster lives in actors: the budget (:class:`BudgetActor`,
reached through :class:`RayBudget`), the per-model concurrency limit (:class:`LimiterActor`,
:class:`RayLimiter`) and the embedded model, loaded once per node (:class:`LocalModelActor`, reached through
:class:`RoutedBackend`). Workers share the response cache object they are given.
"""

from promptopt.workers._budget import BudgetActor, RayBudget
from promptopt.workers._executor import RayExecutor, ray_executor_factory
from promptopt.workers._limiter import LimiterActor, RayLimiter
from promptopt.workers._models import CallFailure, LocalModelActor, RoutedBackend, model_actor_name

__all__ = ["BudgetActor", "CallFailure", "LimiterActor", "LocalModelActor", "RayBudget", "RayExecutor",
           "RayLimiter", "RoutedBackend", "model_actor_name", "ray_executor_factory"]
