"""The contract of :class:`promptopt.search.TrialExecutor` as a test class to run against any executor.

Each test writes a small labelled spec into ``tmp_path``, serves its model on a loopback
:class:`~promptopt.testing.FakeOpenAIServer` (which counts every request and the requests in flight, whichever
process sends them), and hands the executor factory under test an :class:`ExecutorBench`: the services a
search run gives its ``executor_factory`` (the model backend, no cache, a SQLite store, the spec's eval
settings, the run's budget) and the trial context of its batches. The suite then only calls ``run_batch`` and
``close`` on what the factory returns.

The backend must send ``openai/...`` requests to the ``api_base`` in the request's params, as
``promptopt.models.get_backend()`` does; litellm wants an ``OPENAI_API_KEY`` in the environment (any value).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptopt.cache import NullCache
from promptopt.config import PromptConfig
from promptopt.engine import Budget, LocalBudget, Services
from promptopt.models import get_backend
from promptopt.search import TrialContext, TrialExecutor, TrialJob, TrialOutcome
from promptopt.search_spaces import InstructionDimension, SearchSpace
from promptopt.spec import load_spec
from promptopt.store import Store, get_store
from promptopt.testing._fake_server import FakeOpenAIServer
from promptopt.validate import load_and_check

# The instruction candidates of the bench's space, by index: the model answers right, answers wrong, answers
# right after SLOW_S, or is never asked (a variable no case has, so every row fails and so does the trial).
RIGHT, WRONG, SLOW, UNRENDERABLE = range(4)
INSTRUCTIONS = (
    "Label the review.",
    "Label the review, wrongly.",
    "Label the review, slowly.",
    "Label the review in {{nowhere}}.",
)
SLOW_S = 0.3
VALIDATION_ROWS = 4
RUN_ID = "contract-run"


@dataclass(frozen=True)
class ExecutorBench:
    """What an executor under test is built from: ``services`` as a search run hands them to its
    ``executor_factory``, the trial context of its batches, and the URL of the store in ``services.records``
    (for executors whose workers open the store themselves)."""

    ctx: TrialContext
    services: Services
    store_url: str

    @property
    def store(self) -> Store:
        assert isinstance(self.services.records, Store)
        return self.services.records

    def job(self, number: int, instruction: int) -> TrialJob:
        """Trial ``number`` with one of the instructions (:data:`RIGHT`, :data:`WRONG`, ...)."""
        return TrialJob(number=number, params={"instruction": instruction})

    def config_hash(self, job: TrialJob) -> str:
        return SearchSpace.from_json(self.ctx.space).config(job.params).hash


MakeExecutor = Callable[[ExecutorBench], TrialExecutor]


def truth(text: str) -> str:
    return "positive" if int(text.split()[-1]) % 2 else "negative"


def answer(messages: list[dict[str, Any]]) -> str:
    """The fake model: right or wrong as its instruction says, slowly if it says so."""
    instruction, text = str(messages[0]["content"]), str(messages[-1]["content"])
    if instruction == INSTRUCTIONS[SLOW]:
        time.sleep(SLOW_S)
    right = truth(text)
    if instruction == INSTRUCTIONS[WRONG]:
        return "negative" if right == "positive" else "positive"
    return right


def write_spec(folder: Path, model_url: str, concurrency: int) -> Path:
    rows = [{"input": {"text": f"review {i}"}, "expected": truth(f"review {i}")} for i in range(4 * VALIDATION_ROWS)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "executor-contract",
            "model": "openai/fake",
            "prompt": [{"role": "system", "content": INSTRUCTIONS[RIGHT]}, {"role": "user", "content": "{{text}}"}],
            "params": {"max_tokens": 8, "extra": {"api_base": model_url}},
            "output": {"type": "label", "labels": ["positive", "negative"]},
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.5, "validation": 0.25, "test": 0.25}},
        "scorers": [{"type": "exact_match"}],
        "eval": {"concurrency": concurrency, "retries": 0},
    }
    (folder / "spec.yaml").write_text(json.dumps(spec))  # JSON is YAML
    return folder / "spec.yaml"


def open_bench(
    folder: Path, server: FakeOpenAIServer, *, concurrency: int = 4, budget: Budget | None = None
) -> ExecutorBench:
    """A bench whose model is ``server``, with ``concurrency`` calls in flight per model and ``budget``."""
    loaded = load_spec(write_spec(folder, server.url, concurrency))
    base = PromptConfig.from_task(loaded.spec.task)
    space = SearchSpace(base, (InstructionDimension(INSTRUCTIONS),))
    ctx = TrialContext(loaded=loaded, dataset=load_and_check(loaded), space=space.to_json(), run_id=RUN_ID)
    store_url = f"sqlite:///{folder / 'store.db'}"
    services = Services(
        backend=get_backend(), cache=NullCache(), records=get_store(store_url), settings=loaded.spec.eval, budget=budget
    )
    return ExecutorBench(ctx=ctx, services=services, store_url=store_url)


def run_batches(
    make_executor: MakeExecutor, bench: ExecutorBench, *batches: list[TrialJob], close_twice: bool = False
) -> list[list[TrialOutcome]]:
    """Each batch on one executor, in one event loop, then ``close()`` (twice if asked)."""
    executor = make_executor(bench)

    async def every() -> list[list[TrialOutcome]]:
        return [await _batch(executor, bench.ctx, jobs) for jobs in batches]

    try:
        return asyncio.run(every())
    finally:
        executor.close()
        if close_twice:
            executor.close()


async def _batch(executor: TrialExecutor, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
    try:
        return await executor.run_batch(ctx, jobs)
    except Exception as exc:
        raise AssertionError(
            f"run_batch raised {exc!r}: a job's failure must be an outcome, never an exception"
        ) from exc


def states(outcomes: list[TrialOutcome]) -> list[str]:
    return [str(o.state) for o in outcomes]


class ExecutorContract:
    """The :class:`~promptopt.search.TrialExecutor` contract; needs a ``make_executor`` fixture:
    ``make_executor(bench)`` returns a new executor on ``bench.services`` (an :class:`ExecutorBench`).

    ``run_batch`` returns one outcome per job, in the order given, each the outcome of its own job; a job's
    failure is an outcome (state ``failed`` or ``budget``), never an exception; the budget is shared by the
    trials of a batch and never overspent, and counts every call sent; the per-model limit holds across
    trials; every trial is recorded in the run's store; ``close`` may be called twice.
    """

    def test_an_empty_batch_gives_no_outcome(self, make_executor: MakeExecutor, tmp_path: Path) -> None:
        with FakeOpenAIServer() as server:
            [outcomes] = run_batches(make_executor, open_bench(tmp_path, server), [])
        assert outcomes == [] and server.requests == 0

    def test_one_outcome_per_job_in_the_order_given(self, make_executor: MakeExecutor, tmp_path: Path) -> None:
        # The first job is the slowest, and one configuration comes twice.
        with FakeOpenAIServer(answer=answer) as server:
            bench = open_bench(tmp_path, server)
            jobs = [bench.job(7, SLOW), bench.job(3, RIGHT), bench.job(5, WRONG), bench.job(4, RIGHT)]
            [outcomes] = run_batches(make_executor, bench, jobs)
        assert [o.number for o in outcomes] == [7, 3, 5, 4], "outcomes must come in the order of the jobs"
        assert states(outcomes) == ["complete"] * 4, [o.error for o in outcomes]
        assert [o.config_hash for o in outcomes] == [bench.config_hash(j) for j in jobs]
        assert [o.summary.objective if o.summary else None for o in outcomes] == [1.0, 1.0, 0.0, 1.0]
        assert server.requests == 4 * VALIDATION_ROWS

    def test_a_failed_trial_is_an_outcome_beside_the_others(self, make_executor: MakeExecutor, tmp_path: Path) -> None:
        with FakeOpenAIServer(answer=answer) as server:
            bench = open_bench(tmp_path, server)
            jobs = [bench.job(0, RIGHT), bench.job(1, UNRENDERABLE), bench.job(2, WRONG)]
            [outcomes] = run_batches(make_executor, bench, jobs)
        assert [o.number for o in outcomes] == [0, 1, 2]
        assert states(outcomes) == ["complete", "failed", "complete"], [o.error for o in outcomes]
        assert outcomes[1].error and outcomes[1].summary is None
        assert outcomes[1].config_hash == bench.config_hash(jobs[1])

    def test_a_job_whose_configuration_cannot_be_built_is_a_failed_outcome(
        self, make_executor: MakeExecutor, tmp_path: Path
    ) -> None:
        # An instruction index outside the space: the trial raises before its eval starts.
        with FakeOpenAIServer(answer=answer) as server:
            bench = open_bench(tmp_path, server)
            jobs = [bench.job(0, RIGHT), bench.job(1, len(INSTRUCTIONS))]
            [outcomes] = run_batches(make_executor, bench, jobs)
        assert [o.number for o in outcomes] == [0, 1]
        assert states(outcomes) == ["complete", "failed"], [o.error for o in outcomes]
        assert outcomes[1].error

    def test_the_budget_is_shared_by_the_trials_and_never_overspent(
        self, make_executor: MakeExecutor, tmp_path: Path
    ) -> None:
        budget = LocalBudget(model_calls=6)  # 4 trials x 4 rows want 16 calls
        with FakeOpenAIServer(answer=answer, latency_s=0.05) as server:
            bench = open_bench(tmp_path, server, budget=budget)
            first, second = run_batches(
                make_executor,
                bench,
                [bench.job(i, RIGHT) for i in range(4)],
                [bench.job(i, RIGHT) for i in range(4, 8)],
            )
        assert server.requests <= 6, f"{server.requests} calls sent on a budget of 6"
        assert budget.used().model_calls == server.requests, (
            f"the run's budget counted {budget.used().model_calls} calls, {server.requests} were sent"
        )
        assert "budget" in states(first) and set(states(first + second)) <= {"complete", "budget"}
        assert all("budget" in (o.error or "") for o in first + second if o.state == "budget")

    def test_the_per_model_limit_holds_across_trials(self, make_executor: MakeExecutor, tmp_path: Path) -> None:
        with FakeOpenAIServer(answer=answer, latency_s=0.1) as server:
            bench = open_bench(tmp_path, server, concurrency=2)
            [outcomes] = run_batches(make_executor, bench, [bench.job(i, RIGHT) for i in range(4)])
        assert states(outcomes) == ["complete"] * 4, [o.error for o in outcomes]
        assert server.requests == 4 * VALIDATION_ROWS
        assert server.peak_in_flight <= 2, f"{server.peak_in_flight} calls in flight, limit 2 per model"

    def test_every_trial_is_recorded_in_the_run_s_store(self, make_executor: MakeExecutor, tmp_path: Path) -> None:
        with FakeOpenAIServer(answer=answer) as server:
            bench = open_bench(tmp_path, server)
            [outcomes] = run_batches(make_executor, bench, [bench.job(10, WRONG), bench.job(11, UNRENDERABLE)])
        records = [bench.store.get_experiment(o.experiment_id) for o in outcomes if o.experiment_id]
        assert len(records) == 2, [o.model_dump() for o in outcomes]
        assert [(r.run_id, r.trial_number, str(r.role)) for r in records] == [
            (RUN_ID, 10, "trial"),
            (RUN_ID, 11, "trial"),
        ]
        assert [str(r.status) for r in records] == ["finished", "failed"]
        assert [r.config_hash for r in records] == [o.config_hash for o in outcomes]

    def test_close_may_be_called_twice(self, make_executor: MakeExecutor, tmp_path: Path) -> None:
        with FakeOpenAIServer(answer=answer) as server:
            bench = open_bench(tmp_path, server)
            unused = make_executor(bench)
            unused.close()
            unused.close()
            [outcomes] = run_batches(make_executor, bench, [bench.job(0, RIGHT)], close_twice=True)
        assert states(outcomes) == ["complete"]
