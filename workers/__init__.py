"""Trials on a Ray cluster: the only package that imports Ray.

:func:`ray_executor_factory` gives :class:`promptopt.search.SearchRun` a :class:`RayExecutor`, which runs the
trials of each batch on long-lived :class:`TrialWorker` actors (one per two CPUs of every node, started once
per run), many trials per worker at once. Nothing is a round trip per model call: the budget is leased in blocks
from a :class:`BudgetActor` (:class:`LeaseLedger`, :class:`LeasePool`, :class:`TrialGate`), the per-model limit
is split between the workers of a batch (:func:`split_slots`), and the embedded model is loaded once per node
(:class:`LocalModelActor`, reached through :class:`RoutedBackend`). Workers share the response cache object
they are given.
"""

from promptopt.workers._budget import BudgetActor
from promptopt.workers._executor import RayExecutor, ray_executor_factory
from promptopt.workers._finetune import ray_lora_trainer
from promptopt.workers._lease import Grant, LeaseLedger, LeasePool
from promptopt.workers._limiter import split_slots
from promptopt.workers._model_actors import CallFailure, LocalModelActor, RoutedBackend, model_actor_name
from promptopt.workers._trial_gate import MeteredBackend, TrialGate
from promptopt.workers._worker import TrialWorker

__all__ = [
    "BudgetActor",
    "CallFailure",
    "Grant",
    "LeaseLedger",
    "LeasePool",
    "LocalModelActor",
    "MeteredBackend",
    "RayExecutor",
    "RoutedBackend",
    "TrialGate",
    "TrialWorker",
    "model_actor_name",
    "ray_executor_factory",
    "ray_lora_trainer",
    "split_slots",
]
