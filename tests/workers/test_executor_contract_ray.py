"""The TrialExecutor contract (promptopt.testing.ExecutorContract) on the RayExecutor, on a real local Ray
runtime of one node with two trial workers (so that the trials of a batch run in two processes, which share
the budget through the budget actor and split the per-model limit). The model is the suite's loopback fake
OpenAI server, reached by each worker's own litellm backend."""

from __future__ import annotations

import logging

import pytest
import ray  # noqa: TID251 (tests of the Ray adapter)

from promptopt.search import TrialExecutor
from promptopt.testing import ExecutorBench, ExecutorContract
from promptopt.workers import ray_executor_factory

pytestmark = pytest.mark.slow

API_KEY = "sk-test-not-a-real-key-123456"  # litellm wants one; the fake server ignores it


def make_ray_executor(bench: ExecutorBench) -> TrialExecutor:
    """The one place that knows how the executor under test is built."""
    factory = ray_executor_factory(
        loaded=bench.ctx.loaded,
        cache=bench.services.cache,
        store_url=bench.store_url,
        concurrency=bench.services.settings.concurrency,
        workers_per_node=2,
    )
    return factory(bench.services)


@pytest.fixture(scope="module")
def ray_runtime():
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": API_KEY}},
    )
    yield
    ray.shutdown()


@pytest.fixture
def make_executor(ray_runtime, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)  # the driver's backend, unused by the workers
    return make_ray_executor


class TestRayExecutor(ExecutorContract):
    pass
