"""The TrialExecutor contract (promptopt.testing.ExecutorContract) on the in-process LocalExecutor, whose model
is a loopback fake OpenAI server reached through the litellm backend; and executors broken on purpose (one
that reorders its outcomes, one that lets a failed trial escape as an exception), which the suite catches."""

from __future__ import annotations

import pytest

from promptopt.search import LocalExecutor, TrialContext, TrialExecutor, TrialJob, TrialOutcome
from promptopt.testing import ExecutorBench, ExecutorContract


def make_local_executor(bench: ExecutorBench) -> TrialExecutor:
    """The one place that knows how the executor under test is built."""
    return LocalExecutor(bench.services)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")  # litellm wants one; the fake ignores it


@pytest.fixture
def make_executor():
    return make_local_executor


class TestLocalExecutor(ExecutorContract):
    pass


class Reversed(TrialExecutor):
    """Returns the outcomes last job first."""

    def __init__(self, inner: TrialExecutor) -> None:
        self.inner = inner

    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
        return (await self.inner.run_batch(ctx, jobs))[::-1]


class Raising(Reversed):
    """Raises the error of the first trial that failed instead of returning its outcome."""

    async def run_batch(self, ctx: TrialContext, jobs: list[TrialJob]) -> list[TrialOutcome]:
        outcomes = await self.inner.run_batch(ctx, jobs)
        for outcome in outcomes:
            if outcome.state != "complete":
                raise RuntimeError(outcome.error)
        return outcomes


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (Reversed, ExecutorContract.test_one_outcome_per_job_in_the_order_given),
        (Raising, ExecutorContract.test_a_failed_trial_is_an_outcome_beside_the_others),
    ],
)
def test_the_suite_catches_a_broken_executor(tmp_path, broken, check) -> None:
    with pytest.raises(AssertionError):
        check(ExecutorContract(), lambda bench: broken(make_local_executor(bench)), tmp_path)
