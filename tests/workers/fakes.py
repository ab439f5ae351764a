"""Backends for the Ray tests, built inside workers and model actors by module-level factories.

Every call is reported to a named probe actor, so a test sees calls made in any process on any node.
"""

from __future__ import annotations

import asyncio
import os

import ray  # noqa: TID251 (tests of the Ray adapter)

from promptopt.errors import ModelCallError
from promptopt.models import ModelBackend, ModelRequest, ModelResponse, ScriptedBackend

PROBE = "promptopt-test-probe"
LATENCY_S = 0.25


@ray.remote(num_cpus=0)
class Probe:
    """Counts calls in flight (and the peak), and where each call ran."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.in_flight, self.peak, self.calls, self.seen = 0, 0, [], set()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is asked about (since the last reset)."""
        new = key not in self.seen
        self.seen.add(key)
        return new

    def enter(self, where: dict) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.calls.append(where)

    def exit(self) -> None:
        self.in_flight -= 1

    def report(self) -> dict:
        return {"peak": self.peak, "in_flight": self.in_flight, "calls": self.calls}


def truth(text: str) -> str:
    return "positive" if int(text.split()[-1]) % 2 else "negative"


class ProbedBackend(ModelBackend):
    """Answers right after ``LATENCY_S``, telling the probe where the call ran."""

    def __init__(self) -> None:
        self._probe = ray.get_actor(PROBE)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        probe = self._probe
        ctx = ray.get_runtime_context()
        await probe.enter.remote(
            {
                "node": ctx.get_node_id(),
                "actor": ctx.get_actor_id(),
                "pid": os.getpid(),
                "model": request.model,
                "temperature": request.params.get("temperature"),
            }
        )
        try:
            await asyncio.sleep(LATENCY_S)
        finally:
            await probe.exit.remote()
        return ModelResponse(text=truth(request.messages[-1]["content"]), latency_s=LATENCY_S)


def probed_backend() -> ModelBackend:
    return ProbedBackend()


def _rate_limit(request: ModelRequest) -> ModelCallError:
    actor = ray.get_runtime_context().get_actor_id()
    return ModelCallError(f"rate limited in actor {actor}", retryable=True, retry_after=1.5, status=429)


def rate_limited_backend() -> ModelBackend:
    return ScriptedBackend(_rate_limit)


def crashing_backend() -> ModelBackend:
    """Kills the worker process that builds it, as a segfaulting model would."""
    os._exit(1)


class CrashingOnceBackend(ProbedBackend):
    """Kills its worker process on the first call in the cluster (since the probe's reset), as a segfaulting
    client library would; answers as :class:`ProbedBackend` afterwards."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if await self._probe.first_time.remote("crash"):
            os._exit(1)
        return await super().complete(request)


def crashing_once_backend() -> ModelBackend:
    return CrashingOnceBackend()


@ray.remote(num_cpus=0)
def call_local_model(backend_factory) -> dict:
    """From a worker, one ``local/`` call through :class:`RoutedBackend`; the error it raised, as fields."""
    from promptopt.workers import RoutedBackend

    request = ModelRequest(model="local/smollm2-135m", messages=({"role": "user", "content": "review 1"},))
    try:
        asyncio.run(RoutedBackend(backend_factory).complete(request))
    except ModelCallError as exc:
        return {
            "type": type(exc),
            "message": str(exc),
            "retryable": exc.retryable,
            "retry_after": exc.retry_after,
            "status": exc.status,
            "node": ray.get_runtime_context().get_node_id(),
        }
    return {}


def _if_worker_env(request: ModelRequest) -> str | ModelCallError:
    missing = [k for k in ("LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE") if k not in os.environ]
    if missing:
        return ModelCallError(f"not set in the worker: {missing}", retryable=False)
    return truth(request.messages[-1]["content"])


def env_checking_backend() -> ModelBackend:
    """Answers right only where the executor's worker environment variables are set."""
    return ScriptedBackend(_if_worker_env)


def two_step_backend() -> ModelBackend:
    """The two-prompt code task's scripted model (tests/tasks/helpers.py), built on a worker."""
    from tests.tasks.helpers import two_step

    return ScriptedBackend(two_step)
