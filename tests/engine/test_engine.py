"""The eval engine on a scripted fake backend: retries, errors never scored as 0, cache, budget, limits."""

import asyncio

import pytest

from promptopt.cache import DiskResponseCache, NullCache, cache_key
from promptopt.config import Example
from promptopt.engine import Evaluator, LocalBudget, Services, request_for
from promptopt.errors import BudgetExceeded, EvalFailed, ModelCallError
from promptopt.models import ScriptedBackend
from promptopt.spec import EvalSettings
from tests.engine.helpers import REVIEWS, Exact, label_config, oracle, split_of


def run(evaluator, config, split, scorers=None):
    return asyncio.run(evaluator.run(config, split, scorers or [Exact()], name="t", dataset_hash="d"))


def test_scores_and_counts_on_an_oracle_backend():
    backend = ScriptedBackend(oracle)
    result = run(Evaluator(Services(backend=backend)), label_config(), split_of(REVIEWS))
    assert result.summary.objective == 1.0
    assert result.summary.model_calls == 12 and result.summary.errors == 0
    assert [r.parsed for r in result.rows][:2] == ["positive", "positive"]
    sent = backend.calls[0]
    assert sent.model == "fake/model"
    assert sent.messages[0] == {"role": "system", "content": "Say positive or negative."}
    assert sent.params["temperature"] == 0.0 and sent.params["max_tokens"] == 16


def test_retryable_errors_are_retried_honouring_retry_after():
    attempts: dict[str, int] = {}

    def flaky(req):
        text = req.messages[-1]["content"]
        attempts[text] = attempts.get(text, 0) + 1
        if attempts[text] < 3:
            return ModelCallError("rate limited", retryable=True, retry_after=0.01, status=429)
        return oracle(req)

    result = run(
        Evaluator(Services(backend=ScriptedBackend(flaky), settings=EvalSettings(retries=3))),
        label_config(),
        split_of(REVIEWS[:4]),
    )
    assert result.summary.errors == 0 and result.summary.objective == 1.0
    assert result.summary.model_calls == 12  # 3 attempts x 4 rows


def test_a_failed_call_is_an_error_on_its_row_never_a_zero_score():
    def auth_fails_for_one(req):
        if "bad film 0" in req.messages[-1]["content"]:
            return ModelCallError("invalid api key sk-abcdefghijklmnop1234", retryable=False, status=401)
        return oracle(req)

    backend = ScriptedBackend(auth_fails_for_one)
    result = run(
        Evaluator(Services(backend=backend, settings=EvalSettings(max_error_rate=0.5))),
        label_config(),
        split_of(REVIEWS),
    )
    failed = [r for r in result.rows if r.error]
    assert len(failed) == 1 and failed[0].objective is None and failed[0].scores == {}
    assert "sk-abcdefghijklmnop1234" not in failed[0].error and "[REDACTED]" in failed[0].error
    assert result.summary.errors == 1
    assert result.summary.objective == 1.0  # mean over the 11 rows that ran, not 11/12
    assert len(backend.calls) == 12  # a non-retryable error is not retried


def test_error_rate_over_threshold_fails_the_eval():
    backend = ScriptedBackend(lambda req: ModelCallError("boom", retryable=False, status=400))
    with pytest.raises(EvalFailed, match="over the allowed error rate"):
        run(
            Evaluator(Services(backend=backend, settings=EvalSettings(max_error_rate=0.2))),
            label_config(),
            split_of(REVIEWS),
        )
    assert len(backend.calls) < 12  # it stopped early instead of paying for every row


def test_timeout_is_retryable_and_then_recorded():
    class Slow(ScriptedBackend):
        async def complete(self, request):
            self.calls.append(request)
            await asyncio.sleep(1.0)

    backend = Slow(oracle)
    result = run(
        Evaluator(Services(backend=backend, settings=EvalSettings(timeout_s=0.05, retries=1, max_error_rate=1))),
        label_config(),
        split_of(REVIEWS[:2]),
    )
    assert all("timed out" in r.error for r in result.rows)
    assert len(backend.calls) == 4


def test_concurrency_is_bounded_per_model():
    in_flight, peak = 0, 0

    class Counting(ScriptedBackend):
        async def complete(self, request):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().complete(request)

    run(
        Evaluator(Services(backend=Counting(oracle), settings=EvalSettings(concurrency=3))),
        label_config(),
        split_of(REVIEWS),
    )
    assert peak == 3


def test_second_run_is_served_from_cache(tmp_path):
    backend = ScriptedBackend(oracle)
    cache = DiskResponseCache(tmp_path / "cache")
    first = run(Evaluator(Services(backend=backend, cache=cache)), label_config(), split_of(REVIEWS))
    second = run(
        Evaluator(Services(backend=backend, cache=DiskResponseCache(tmp_path / "cache"))),
        label_config(),
        split_of(REVIEWS),
    )
    assert first.summary.model_calls == 12 and first.summary.cache_hits == 0
    assert second.summary.model_calls == 0 and second.summary.cache_hits == 12
    assert all(r.cache_hit for r in second.rows)
    assert [r.output for r in first.rows] == [r.output for r in second.rows]


def test_repeats_are_cached_apart_and_no_cache_calls_every_time(tmp_path):
    backend = ScriptedBackend(oracle)
    result = run(
        Evaluator(Services(backend=backend, cache=DiskResponseCache(tmp_path), settings=EvalSettings(repeats=2))),
        label_config(),
        split_of(REVIEWS[:3]),
    )
    assert result.summary.rows == 6 and result.summary.model_calls == 6
    run(Evaluator(Services(backend=backend, cache=NullCache())), label_config(), split_of(REVIEWS[:3]))
    assert len(backend.calls) == 9


def test_cache_key_depends_on_what_decides_the_answer_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-not-matter")
    cfg = label_config()
    req = request_for(cfg, {"text": "x"}, timeout_s=5)
    assert cache_key(req, 0) == cache_key(request_for(cfg, {"text": "x"}, timeout_s=99), 0)
    assert cache_key(req, 0) != cache_key(req, 1)
    hotter = label_config(params=cfg.params.model_copy(update={"temperature": 0.7}))
    assert cache_key(req, 0) != cache_key(request_for(hotter, {"text": "x"}, 5), 0)
    assert cache_key(req, 0) != cache_key(request_for(cfg, {"text": "y"}, 5), 0)


def test_budget_is_enforced_before_a_call_is_sent():
    backend = ScriptedBackend(oracle)
    budget = LocalBudget(model_calls=5)
    with pytest.raises(BudgetExceeded, match="model-call budget"):
        run(
            Evaluator(Services(backend=backend, budget=budget, settings=EvalSettings(concurrency=1))),
            label_config(),
            split_of(REVIEWS),
        )
    assert len(backend.calls) == 5 and budget.used().model_calls == 5


def test_dollar_budget_uses_the_estimate_before_the_call():
    backend = ScriptedBackend(oracle, cost_per_call=0.01)
    with pytest.raises(BudgetExceeded, match="dollar budget"):
        run(
            Evaluator(Services(backend=backend, budget=LocalBudget(usd=0.035), settings=EvalSettings(concurrency=1))),
            label_config(),
            split_of(REVIEWS),
        )
    assert len(backend.calls) == 3


def test_few_shot_examples_form_a_shared_prefix():
    cfg = label_config(
        examples=(
            Example(input={"text": "great"}, output="positive"),
            Example(input={"text": "awful"}, output="negative"),
        )
    )
    a, b = cfg.render({"text": "one"}), cfg.render({"text": "two"})
    assert a[:5] == b[:5] and a[-1] == {"role": "user", "content": "one"}
    assert [m["role"] for m in a] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert a[2] == {"role": "assistant", "content": "positive"}


def test_constrained_label_config_sends_a_constraint():
    req = request_for(label_config(constrained=True), {"text": "x"}, 5)
    assert req.constraint is not None and req.constraint.labels == ("positive", "negative")
    assert request_for(label_config(), {"text": "x"}, 5).constraint is None


def test_scorer_failure_is_a_row_error():
    from promptopt.errors import ScorerError
    from promptopt.scorers._base import Scorer

    class Broken(Scorer):
        name, weight = "broken", 1.0

        async def score(self, row):
            raise ScorerError("exploded")

    result = run(
        Evaluator(Services(backend=ScriptedBackend(oracle), settings=EvalSettings(max_error_rate=1))),
        label_config(),
        split_of(REVIEWS[:2]),
        scorers=[Exact(), Broken()],
    )
    assert all(r.error and "broken" in r.error and r.objective is None for r in result.rows)


def test_the_summary_says_how_often_the_most_common_answer_was_given():
    mixed = run(Evaluator(Services(backend=ScriptedBackend(oracle))), label_config(), split_of(REVIEWS))
    answers = [r.parsed for r in mixed.rows]
    top = max(answers.count(a) for a in set(answers)) / len(answers)
    assert 0 < top < 1 and mixed.summary.top_answer_share == pytest.approx(top)
    always = run(Evaluator(Services(backend=ScriptedBackend(lambda r: "positive"))), label_config(), split_of(REVIEWS))
    assert always.summary.top_answer_share == 1.0  # one label whatever the input
