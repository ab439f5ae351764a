"""Shared model actors for the embedded ``local/...`` models, one per node, and the backend workers use.

A llama.cpp model takes memory and seconds to load, so each node loads it once, in a
:class:`LocalModelActor` named after the node; every trial on that node sends its ``local/`` calls there
through :class:`RoutedBackend`. Other models are called from the worker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast

import ray  # noqa: TID251 (workers/ is the Ray adapter)
from pydantic import BaseModel, ConfigDict
from ray.exceptions import RayActorError, RayError  # noqa: TID251
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: TID251

from promptopt.errors import ModelCallError
from promptopt.models import ModelBackend, ModelRequest, ModelResponse
from promptopt.workers._cluster import alive_node_ids, current_node_id

BackendFactory = Callable[[], ModelBackend]
LOCAL_PREFIX = "local/"


def model_actor_name(node_id: str) -> str:
    return f"promptopt-local-model-{node_id}"


class CallFailure(BaseModel):
    """A :class:`ModelCallError` as a value: the exception's keyword-only fields do not survive pickling."""

    model_config = ConfigDict(frozen=True)
    message: str
    retryable: bool
    retry_after: float | None = None
    status: int | None = None

    @classmethod
    def of(cls, exc: ModelCallError) -> CallFailure:
        return cls(message=str(exc), retryable=exc.retryable, retry_after=exc.retry_after, status=exc.status)

    def error(self) -> ModelCallError:
        return ModelCallError(self.message, retryable=self.retryable, retry_after=self.retry_after, status=self.status)


@ray.remote(num_cpus=0, max_concurrency=64, max_restarts=2)
class LocalModelActor:
    """Holds one backend (by default ``LiteLLMBackend``, which loads the embedded model on first use).

    It reserves no CPU so that it never keeps trials off its node; the trials mostly wait on it.
    """

    def __init__(self, backend_factory: BackendFactory) -> None:
        self._backend = backend_factory()

    async def complete(self, request: ModelRequest) -> ModelResponse | CallFailure:
        try:
            return await self._backend.complete(request)
        except ModelCallError as exc:
            return CallFailure.of(exc)

    async def node_id(self) -> str:
        return current_node_id()


class ModelActors:
    """The driver's handles on the model actors (it owns them: they die with the driver or :meth:`close`)."""

    def __init__(self, backend_factory: BackendFactory) -> None:
        self._factory = backend_factory
        self._handles: dict[str, Any] = {}
        self._owned: list[Any] = []

    def ensure(self) -> None:
        """Start an actor on every live node that has none yet (nodes may join between batches). A node's
        actor started by another executor of this job is used, not owned."""
        for node in alive_node_ids():
            if node in self._handles:
                continue
            try:
                handle = (
                    cast(Any, LocalModelActor)
                    .options(  # an actor class (ray.remote)
                        name=model_actor_name(node),
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                    )
                    .remote(self._factory)
                )
                self._owned.append(handle)
            except ValueError:  # the name is taken
                handle = ray.get_actor(model_actor_name(node))
            self._handles[node] = handle

    def close(self) -> None:
        for handle in self._owned:
            ray.kill(handle)
        self._handles.clear()
        self._owned.clear()


def uses_local_models(*documents: Any) -> bool:
    """Whether any string in these JSON-like documents names a ``local/`` model."""
    stack = list(documents)
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item.startswith(LOCAL_PREFIX):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class RoutedBackend(ModelBackend):
    """Inside a worker: ``local/`` calls go to this node's :class:`LocalModelActor`, the rest to a backend
    built in the worker by ``backend_factory``. Without a model actor on the node (it joined after the
    batch started), ``local/`` calls are served in the worker too."""

    def __init__(self, backend_factory: BackendFactory) -> None:
        self._factory = backend_factory
        self._direct: ModelBackend | None = None
        self._actor: Any = None

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if request.model.startswith(LOCAL_PREFIX):
            actor = self._model_actor()
            if actor is not None:
                return await self._via(actor, request)
        return await self.direct().complete(request)

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return self.direct().estimate_cost(request, completion_tokens)

    async def aclose(self) -> None:
        if self._direct is not None:
            await self._direct.aclose()

    def direct(self) -> ModelBackend:
        if self._direct is None:
            self._direct = self._factory()
        return self._direct

    def _model_actor(self) -> Any:
        if self._actor is None:
            try:
                self._actor = ray.get_actor(model_actor_name(current_node_id()))
            except ValueError:
                return None
        return self._actor

    async def _via(self, actor: Any, request: ModelRequest) -> ModelResponse:
        ref = actor.complete.remote(request)
        try:
            result = await ref
        except asyncio.CancelledError:  # the engine's timeout: stop the generation too
            with contextlib.suppress(Exception):
                ray.cancel(ref)
            raise
        except RayActorError as exc:
            raise ModelCallError(
                f"the local model actor died ({type(exc).__name__}); it is restarted", retryable=True
            ) from exc
        except RayError as exc:
            raise ModelCallError(f"the local model actor failed: {exc}", retryable=False) from exc
        if isinstance(result, CallFailure):
            raise result.error()
        return cast(ModelResponse, result)
