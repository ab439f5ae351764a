"""RayExecutor on a two-node local cluster: trials spread over the nodes and run on workers that live for the
whole run, and the budget, the per-model limit and the embedded-model actors hold across all of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import ray  # noqa: TID251 (tests of the Ray adapter)
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: TID251

from promptopt.cache import DiskResponseCache, NullCache
from promptopt.engine import LocalBudget, Services
from promptopt.errors import ModelCallError
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, SearchRun
from promptopt.search._trial import TrialContext
from promptopt.search_spaces import SearchSpace
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.validate import load_and_check
from promptopt.workers import model_actor_name, ray_executor_factory
from tests.workers import fakes
from tests.workers.helpers import TEMPERATURES, VALIDATION_ROWS, context, jobs, write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster  # noqa: TID251

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def probe_actor(cluster):
    # One named probe for the module, held here: a handle dropped at the end of each test let Ray destroy
    # the actor while the next test's get_if_exists still found it ("ActorDiedError ... all references to the
    # actor were removed"), seen once in a full run.
    actor = fakes.Probe.options(name=fakes.PROBE).remote()
    yield actor
    ray.kill(actor)


@pytest.fixture
def probe(probe_actor):
    ray.get(probe_actor.reset.remote())
    return probe_actor


def executor(tmp: Path, ctx: TrialContext, *, budget=None, backend_factory=fakes.probed_backend, cache=None):
    factory = ray_executor_factory(
        loaded=ctx.loaded,
        cache=cache or DiskResponseCache(tmp / "cache"),
        store_url=f"sqlite:///{tmp}/s.db",
        concurrency=ctx.loaded.spec.eval.concurrency,
        backend_factory=backend_factory,
    )
    # The driver's services carry only the budget to the workers, which build their own backends.
    return factory(Services(backend=ScriptedBackend(lambda r: "unused"), budget=budget))


def alive_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def test_trials_spread_over_both_nodes_and_local_calls_reach_their_nodes_model_actor(tmp_path, probe):
    ctx = context(tmp_path, **{"task.model": "local/smollm2-135m"})
    ex = executor(tmp_path, ctx)
    try:
        outcomes = asyncio.run(ex.run_batch(ctx, jobs()))
        calls = ray.get(probe.report.remote())["calls"]
        ray.get(probe.reset.remote())
        again = asyncio.run(ex.run_batch(ctx, jobs(first=10)))
        actor_of = {node: ray.get_actor(model_actor_name(node))._actor_id.hex() for node in alive_nodes()}
    finally:
        ex.close()
    assert [o.number for o in outcomes] == [0, 1, 2, 3]
    assert [o.state for o in outcomes] == ["complete"] * 4, [o.error for o in outcomes]
    assert all(o.summary.objective == 1.0 for o in outcomes)
    assert {o.node for o in outcomes} == alive_nodes() and len(alive_nodes()) == 2
    # Every call was served by the model actor of the node it ran on, with the trial's temperature.
    assert len(calls) == 4 * VALIDATION_ROWS
    assert all(c["actor"] == actor_of[c["node"]] for c in calls)
    assert sorted({c["temperature"] for c in calls}) == list(TEMPERATURES)
    assert {c["model"] for c in calls} == {"local/smollm2-135m"}
    # The workers share the response cache: the same configurations again send no call.
    assert [o.state for o in again] == ["complete"] * 4
    assert ray.get(probe.report.remote())["calls"] == []
    store = get_store(f"sqlite:///{tmp_path}/s.db")
    assert {store.get_experiment(o.experiment_id).run_id for o in outcomes} == {"run-1"}


def test_calls_in_flight_per_model_stay_within_concurrency_across_the_cluster(tmp_path, probe):
    ctx = context(tmp_path, **{"eval.concurrency": 2})
    ex = executor(tmp_path, ctx)
    try:
        outcomes = asyncio.run(ex.run_batch(ctx, jobs()))
    finally:
        ex.close()
    report = ray.get(probe.report.remote())
    assert [o.state for o in outcomes] == ["complete"] * 4
    assert len(report["calls"]) == 4 * VALIDATION_ROWS
    assert report["peak"] == 2  # at most 2, and the limit was reached: the trials did run in parallel
    assert len({c["node"] for c in report["calls"]}) == 2


def test_budget_caps_calls_across_parallel_trials_and_syncs_back(tmp_path, probe):
    ctx = context(tmp_path)
    budget = LocalBudget(model_calls=5)
    ex = executor(tmp_path, ctx, budget=budget)
    try:
        outcomes = asyncio.run(ex.run_batch(ctx, jobs()))
        sent = len(ray.get(probe.report.remote())["calls"])
        used_after_first = budget.used().model_calls
        second = asyncio.run(ex.run_batch(ctx, jobs(first=10)))
    finally:
        ex.close()
    assert sent == 5  # 16 wanted
    assert used_after_first == 5
    assert "budget" in {o.state for o in outcomes}
    assert all("model-call budget of 5 calls is spent" in o.error for o in outcomes if o.state == "budget")
    # The next batch starts from the driver's usage: nothing left, so nothing is sent; the configurations
    # that completed complete again from the cache (free), the others stop at the budget again.
    assert [o.state for o in second] == [o.state for o in outcomes]
    assert len(ray.get(probe.report.remote())["calls"]) == 5
    assert budget.used().model_calls == 5


def test_model_call_error_crosses_the_model_actor_boundary_intact(tmp_path, cluster):
    ctx = context(tmp_path, **{"task.model": "local/smollm2-135m"})
    ex = executor(tmp_path, ctx, backend_factory=fakes.rate_limited_backend)
    try:
        ex.start_model_actors()
        nodes = sorted(alive_nodes())
        results = ray.get(
            [
                fakes.call_local_model.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
                ).remote(fakes.rate_limited_backend)
                for node in nodes
            ]
        )
        actor_of = {node: ray.get_actor(model_actor_name(node))._actor_id.hex() for node in nodes}
    finally:
        ex.close()
    for node, got in zip(nodes, results, strict=True):
        assert got["node"] == node
        assert got["type"] is ModelCallError
        assert (got["retryable"], got["retry_after"], got["status"]) == (True, 1.5, 429)
        assert got["message"] == f"rate limited in actor {actor_of[node]}"


def test_a_crashed_worker_is_a_failed_outcome_in_job_order(tmp_path, cluster):
    ctx = context(tmp_path)
    ex = executor(tmp_path, ctx, backend_factory=fakes.crashing_backend)
    try:
        outcomes = asyncio.run(ex.run_batch(ctx, jobs()[:2]))
    finally:
        ex.close()
    assert [(o.number, o.state) for o in outcomes] == [(0, "failed"), (1, "failed")]
    assert all("worker" in o.error.lower() for o in outcomes)
    space = SearchSpace.from_json(ctx.space)
    assert [o.config_hash for o in outcomes] == [space.config(j.params).hash for j in jobs()[:2]]


def test_search_run_uses_the_ray_executor_and_the_driver_sees_the_calls(tmp_path, probe):
    path = write_spec(tmp_path, **{"search.temperature": list(TEMPERATURES[1:]), "budget.trials": 4})
    loaded = load_spec(path)
    store = get_store(f"sqlite:///{tmp_path}/s.db")
    cache = DiskResponseCache(tmp_path / "cache")
    factory = ray_executor_factory(
        loaded=loaded, cache=cache, store_url=store.url, concurrency=16, backend_factory=fakes.probed_backend
    )
    given: list[Services] = []  # what the run handed its executor factory: the search budget among them

    def recording_factory(services: Services):
        given.append(services)
        return factory(services)

    driver = ScriptedBackend(lambda r: fakes.truth(r.messages[-1]["content"]))
    run = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(parallel=4, sampler="grid"),
        executor_factory=recording_factory,
        services=Services(backend=driver, cache=cache, records=store),
    )
    result = asyncio.run(run.run())
    calls = ray.get(probe.report.remote())["calls"]
    assert result.trials == 4 and result.failed_trials == 0
    assert {c.node for c in result.leaderboard} <= alive_nodes()
    assert len({c.node for c in result.leaderboard}) == 2
    # The run's own budget counted every call the workers sent (the grid may repeat a configuration in a
    # batch, whose calls may then come from the cache: hence no fixed number).
    assert len(calls) >= 3 * VALIDATION_ROWS
    [services] = given
    assert services.budget.used().model_calls == len(calls)


def test_workers_live_for_the_run_and_run_a_batch_s_trials_together(tmp_path, probe):
    ctx = context(tmp_path)
    ex = executor(tmp_path, ctx, cache=NullCache())  # no cache: the second batch sends its calls again
    try:
        first = asyncio.run(ex.run_batch(ctx, jobs()))
        calls = ray.get(probe.report.remote())["calls"]
        ray.get(probe.reset.remote())
        second = asyncio.run(ex.run_batch(ctx, jobs(first=10)))
        again = ray.get(probe.report.remote())["calls"]
    finally:
        ex.close()
    assert [o.state for o in first + second] == ["complete"] * 8
    # One worker process per node (one CPU each), the same processes in both batches.
    pids = {c["pid"] for c in calls}
    assert len(pids) == 2 and {c["pid"] for c in again} == pids
    assert {(c["node"], c["pid"]) for c in calls} == {(c["node"], c["pid"]) for c in again}


def test_a_worker_that_dies_fails_its_trial_and_is_back_for_the_next_batch(tmp_path, probe):
    ctx = context(tmp_path)
    ex = executor(tmp_path, ctx, backend_factory=fakes.crashing_once_backend)
    try:
        outcomes = asyncio.run(ex.run_batch(ctx, jobs()[:2]))
        again = asyncio.run(ex.run_batch(ctx, jobs()[:2]))
    finally:
        ex.close()
    assert sorted(o.state for o in outcomes) == ["complete", "failed"]
    assert "worker" in next(o.error for o in outcomes if o.state == "failed").lower()
    assert [o.state for o in again] == ["complete", "complete"], [o.error for o in again]
    assert {o.node for o in again} == alive_nodes()


def test_a_cancelled_batch_stops_its_calls_and_leaves_the_workers_usable(tmp_path, probe):
    ctx = context(tmp_path, **{"eval.concurrency": 2})
    budget = LocalBudget(model_calls=100)
    ex = executor(tmp_path, ctx, budget=budget, cache=NullCache())

    async def cancelled() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ex.run_batch(ctx, jobs(first=10)), fakes.LATENCY_S * 1.5)

    try:
        asyncio.run(ex.run_batch(ctx, jobs()))  # the workers are up: calls leave as soon as a batch starts
        ray.get(probe.reset.remote())
        asyncio.run(cancelled())
        sent = len(ray.get(probe.report.remote())["calls"])
        counted = budget.used().model_calls - 4 * VALIDATION_ROWS
        asyncio.run(asyncio.sleep(4 * fakes.LATENCY_S))
        after = ray.get(probe.report.remote())
        ray.get(probe.reset.remote())
        outcomes = asyncio.run(ex.run_batch(ctx, jobs(first=20)))
    finally:
        ex.close()
    assert 0 < sent < 4 * VALIDATION_ROWS
    assert after["in_flight"] == 0 and len(after["calls"]) == sent  # nothing more was sent after the cancel
    # Every call sent is counted; a lease whose answer the cancel cut off counts as spent, never less.
    assert sent <= counted <= 4 * VALIDATION_ROWS
    assert [o.state for o in outcomes] == ["complete"] * 4
    assert budget.used().model_calls == 4 * VALIDATION_ROWS + counted + 4 * VALIDATION_ROWS


def test_a_code_tasks_trials_run_on_the_workers_of_both_nodes_with_their_traces(tmp_path, cluster):
    from tests.tasks.helpers import two_step, write_task

    loaded = load_spec(write_task(tmp_path, few_shot={"max_k": 2, "pool_seeds": 2}))
    store = get_store(f"sqlite:///{tmp_path}/s.db")
    cache = DiskResponseCache(tmp_path / "cache")
    factory = ray_executor_factory(
        loaded=loaded, cache=cache, store_url=store.url, concurrency=4, backend_factory=fakes.two_step_backend
    )
    run = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(parallel=4, sampler="random", max_trials=6, top_k=1, promote=False),
        executor_factory=factory,
        services=Services(backend=ScriptedBackend(two_step), cache=cache, records=store),
    )
    result = asyncio.run(run.run())
    assert result.failed_trials == 0 and len({c.node for c in result.leaderboard}) == 2
    rows = store.get_rows(result.leaderboard[-1].experiment_id)  # a trial eval recorded by a worker
    assert rows and all([s.prompt for s in r.trace] == ["rewrite", "classify"] for r in rows)
