"""Provider fine-tunes through litellm's fine-tuning API, against our fake OpenAI fine-tuning server on loopback
(no torch, no network): the upload is the train split as chat JSONL, the job is followed until it ends, a failed
or cancelled job is a clear error that leaves nothing to reuse, the budget refuses a job it cannot pay before
anything is uploaded, a run killed while it polls finds its job again (never a second job), and a search run
offers the fine-tuned model as a candidate that wins when it answers better."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from promptopt.cli.app import app
from promptopt.engine import LocalBudget
from promptopt.errors import BudgetExceeded, EvalFailed, InputError, ModelCallError
from promptopt.finetune import Polling, ProviderParams, TrainingExample, provider_key, train_provider
from promptopt.models import LiteLLMFineTuneAPI, ProviderJob, get_backend
from promptopt.search import FineTuneTrained, PrePass, estimate_run
from promptopt.search._finetune import train_fine_tunes, training_examples
from promptopt.spec import load_spec
from promptopt.store import get_store
from promptopt.testing import FakeFineTuneServer, JobScript, base_or_tuned
from promptopt.validate import check_fine_tune, load_and_check
from tests.finetune.test_search_finetune import run

BASE = "openai/gpt-4o-mini-2024-07-18"
PRICE = 3.0  # dollars per 1M training tokens
FAST = Polling(first_s=0.01, max_s=0.02)


def parity(messages: list[dict[str, str]]) -> str:
    """The fine-tuned model's answer: right on every case (the base model's keyword rule gets half)."""
    return "positive" if int(messages[-1]["content"].split()[-1]) % 2 else "negative"


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOPT_ADAPTERS", str(tmp_path / "adapters"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")  # litellm wants one; the fake ignores it
    with FakeFineTuneServer(script=JobScript(polls=3), answer=base_or_tuned(parity)) as fake:
        yield fake


def write_spec(folder: Path, url: str, job: dict | None = None, **budget) -> Path:
    rows = [{"input": {"text": f"film number {i}"}, "expected": "positive" if i % 2 else "negative"} for i in range(30)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "task": {
            "name": "reviews",
            "model": BASE,
            "prompt": [{"role": "system", "content": "Label the review."}, {"role": "user", "content": "{{text}}"}],
            "params": {"max_tokens": 4, "extra": {"api_base": url}},
            "output": {"type": "label", "labels": ["positive", "negative"]},
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.4, "validation": 0.3, "test": 0.3}, "seed": 1},
        "scorers": [{"type": "exact_match"}],
        "search": {
            "fine_tune": {"jobs": [job or {"name": "tuned", "epochs": 2, "price_per_1m_training_tokens": PRICE}]}
        },
        "budget": {"trials": 4, **budget},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def examples(n: int = 4) -> list[TrainingExample]:
    return [
        TrainingExample(
            messages=({"role": "user", "content": f"film number {i}"},), completion=parity([{"content": str(i)}])
        )
        for i in range(n)
    ]


def train(server: FakeFineTuneServer, api: LiteLLMFineTuneAPI | None = None, **kwargs):
    params = ProviderParams(epochs=2, api_base=server.url)
    api = api or LiteLLMFineTuneAPI(api_base=server.url)
    return asyncio.run(train_provider(BASE, examples(), params, price_per_1m=PRICE, api=api, polling=FAST, **kwargs))


def records(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "adapters").glob("*.provider.json"))


def test_a_job_is_uploaded_created_followed_to_success_and_paid_at_the_tokens_it_trained(server, tmp_path):
    budget = LocalBudget(usd=1.0)
    tuned = train(server, budget=budget)

    key = provider_key(BASE, examples(), ProviderParams(epochs=2, api_base=server.url))
    assert tuned.key == key and tuned.model == f"openai/ft:gpt-4o-mini-2024-07-18:{key}:ftjob-1"
    assert (tuned.job_id, tuned.file_id, tuned.rows, tuned.reused) == ("ftjob-1", "file-1", 4, False)
    assert server.counts["files.create"] == 1 and server.counts["jobs.create"] == 1
    assert server.counts["jobs.retrieve"] == 3  # queued, running, succeeded
    [body] = server.job_bodies
    assert body == {
        "model": "gpt-4o-mini-2024-07-18",
        "training_file": "file-1",
        "hyperparameters": {"n_epochs": 2},
        "suffix": key,
    }  # no metadata: litellm sends none to OpenAI
    assert server.files["file-1"]["filename"] == f"promptopt-{key}.jsonl"
    assert server.files["file-1"]["purpose"] == "fine-tune"
    assert server.jobs["ftjob-1"]["trained_tokens"] == tuned.trained_tokens > 0
    assert tuned.usd == pytest.approx(tuned.trained_tokens * PRICE / 1e6)
    assert budget.used().usd == pytest.approx(tuned.usd)  # the reservation settled at the real tokens


def test_a_finished_job_is_found_again_by_its_record_then_by_its_suffix_without_a_second_job(server, tmp_path):
    first = train(server)
    again = train(server)
    assert again.reused and again.model == first.model and again.usd == 0.0
    assert server.counts["jobs.create"] == 1 and server.counts["jobs.list"] == 1  # the record answered

    for record in records(tmp_path):
        record.unlink()  # another machine: only the provider knows the job
    found = train(server)
    assert found.reused and found.model == first.model and found.job_id == "ftjob-1"
    assert server.counts["jobs.create"] == 1 and server.counts["files.create"] == 1


def test_the_uploaded_jsonl_is_the_train_split_through_the_spec_prompt_with_the_expected_answer(server, tmp_path):
    loaded = load_spec(write_spec(tmp_path, server.url))
    dataset = load_and_check(loaded)
    events: list[FineTuneTrained] = []
    dimension = asyncio.run(train_fine_tunes(loaded, dataset, PrePass((), ()), on_event=events.append))

    rows = server.rows("file-1")
    train_texts = {c.input["text"]: c.expected for c in dataset.train.cases}
    held_out = {c.input["text"] for split in ("validation", "test") for c in dataset.split(split).cases}
    assert len(rows) == len(dataset.train) == 12
    for row in rows:
        system, user, answer = row["messages"]
        assert (system, user["role"], answer["role"]) == (
            {"role": "system", "content": "Label the review."},
            "user",
            "assistant",
        )
        assert user["content"] in train_texts and user["content"] not in held_out
        assert answer["content"] == train_texts[user["content"]]
    assert dimension is not None and dimension.models["tuned"].startswith("openai/ft:gpt-4o-mini-2024-07-18:")
    lineage = dimension.lineage["tuned"]
    assert (lineage["job_id"], lineage["file_id"], lineage["rows"], lineage["provider"]) == (
        "ftjob-1",
        "file-1",
        12,
        "openai",
    )
    assert lineage["params"]["epochs"] == 2 and lineage["params"]["learning_rate_multiplier"] is None
    assert lineage["usd"] == pytest.approx(lineage["trained_tokens"] * PRICE / 1e6)
    assert [e.job for e in events] == ["tuned"] and events[0].rows == 12 and not events[0].reused


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            JobScript(end="failed", polls=2, error="row 3 has no assistant message"),
            "failed: row 3 has no assistant message",
        ),
        (JobScript(end="cancelled", polls=2), "cancelled"),
    ],
)
def test_a_failed_or_cancelled_job_is_a_clear_error_that_leaves_nothing_to_reuse(server, tmp_path, script, expected):
    server.script = script
    budget = LocalBudget(usd=1.0)
    with pytest.raises(EvalFailed) as err:
        train(server, budget=budget)
    message = str(err.value)
    assert f"fine-tune job ftjob-1 of {BASE} {expected}" in message and "the next run starts a new job" in message
    assert records(tmp_path) == [] and budget.used().usd == 0.0

    server.script = JobScript(polls=1)
    tuned = train(server)  # a failed job is never reused: the next call starts a new one
    assert tuned.job_id == "ftjob-2" and not tuned.reused and server.counts["jobs.create"] == 2


def test_a_budget_that_cannot_pay_the_training_refuses_before_anything_is_uploaded(server, tmp_path):
    loaded = load_spec(write_spec(tmp_path, server.url, usd=0.000001))
    dataset = load_and_check(loaded)
    with pytest.raises(BudgetExceeded) as err:
        asyncio.run(train_fine_tunes(loaded, dataset, PrePass((), ()), on_event=lambda e: None))
    message = str(err.value)
    assert "spec.yaml: search.fine_tune.jobs[0] (tuned)" in message and "budget.usd" in message
    assert "dollar budget of $1e-06 would be passed" in message and "at $3 per 1M" in message
    assert "would cost about $" in message and "nothing was uploaded" in message
    assert server.counts["files.create"] == 0 and server.counts["jobs.create"] == 0  # only the job list was read
    assert records(tmp_path) == []

    run_budget = LocalBudget(usd=0.01, start=None)
    run_budget.reserve(0, 0.01)  # what the run spent before (pre-pass, proposals) counts too
    with pytest.raises(BudgetExceeded, match="spent \\$0.0100"):
        asyncio.run(train_fine_tunes(loaded, dataset, PrePass((), ()), on_event=lambda e: None, budget=run_budget))
    assert server.counts["files.create"] == 0 and server.counts["jobs.create"] == 0


class Killed(BaseException):
    """Stands for the process dying (SIGKILL, Ctrl-C) while it polls."""


class DiesWhilePolling(LiteLLMFineTuneAPI):
    def __init__(self, *, api_base: str, polls: int) -> None:
        super().__init__(api_base=api_base)
        self.polls = polls

    async def retrieve(self, job_id: str) -> ProviderJob:
        job = await super().retrieve(job_id)
        self.polls -= 1
        if self.polls == 0:
            raise Killed
        return job


@pytest.mark.parametrize("record_kept", [True, False])
def test_a_run_killed_while_polling_finds_its_job_again_and_never_starts_a_second(server, tmp_path, record_kept):
    server.script = JobScript(polls=4)
    with pytest.raises(Killed):
        train(server, api=DiesWhilePolling(api_base=server.url, polls=2))
    assert server.jobs["ftjob-1"]["status"] == "running" and len(records(tmp_path)) == 1
    if not record_kept:
        records(tmp_path)[0].unlink()  # killed before the record was written: the provider's list finds it

    budget = LocalBudget(usd=1.0)
    tuned = train(server, budget=budget)
    assert tuned.job_id == "ftjob-1" and not tuned.reused and tuned.model.endswith(":ftjob-1")
    assert server.counts["jobs.create"] == 1 and server.counts["files.create"] == 1
    assert server.counts["jobs.list"] == (1 if record_kept else 2)
    assert server.counts["files.retrieve"] == (0 if record_kept else 1)  # the running job's file name
    assert budget.used().usd == pytest.approx(tuned.usd) and tuned.usd > 0  # paid once it trained, though unreserved


def test_a_search_run_offers_the_fine_tuned_model_which_answers_better_and_wins(server, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    result, events = run(write_spec(tmp_path, server.url), url)  # the LoRA tests' run, on litellm's backend
    tuned_model = next(m for m in server.chat_models if m.startswith("ft:"))
    assert result.best.config["model"] == f"openai/{tuned_model}"
    assert result.best.validation_score == 1.0
    assert server.chat_models[BASE.removeprefix("openai/")] > 0  # the base model was tried too
    assert server.counts["jobs.create"] == 1
    assert [(e.job, e.model) for e in events] == [("tuned", result.best.config["model"])]
    (record,) = get_store(url).list_runs()
    [dim] = [d for d in record.space["dimensions"] if d["kind"] == "fine_tune"]
    assert dim["models"]["tuned"] == result.best.config["model"]
    assert dim["lineage"]["tuned"]["job_id"] == "ftjob-1" and dim["lineage"]["tuned"]["trained_tokens"] > 0
    usd = dim["lineage"]["tuned"]["usd"]  # the training dollars are the run's, kept with its space
    assert usd > 0 and result.cost_usd >= usd and get_store(url).run_usage(record.id)[1] >= usd


def test_a_search_run_whose_dollar_budget_cannot_pay_the_training_stops_before_any_upload(server, tmp_path):
    spec = write_spec(tmp_path, server.url, usd=0.000001, model_calls=200)
    with pytest.raises(BudgetExceeded, match="search.fine_tune.jobs\\[0\\] \\(tuned\\).*budget.usd"):
        run(spec, f"sqlite:///{tmp_path / 's.db'}")
    assert server.counts["files.create"] == 0 and server.counts["jobs.create"] == 0


@pytest.mark.parametrize(
    ("job", "field", "message"),
    [
        ({"epochs": 2}, "price_per_1m_training_tokens", "required for a provider fine-tune"),
        ({"rank": 4, "price_per_1m_training_tokens": 1.0}, "rank", "LoRA only"),
        ({"base": "anthropic/claude-3-5-haiku", "price_per_1m_training_tokens": 1.0}, "base", "other providers'"),
        (
            {"base": "local/smollm2-135m", "price_per_1m_training_tokens": 1.0},
            "price_per_1m_training_tokens",
            "only for a provider",
        ),
    ],
)
def test_optimize_validate_names_the_field_of_a_bad_provider_job(server, tmp_path, job, field, message):
    spec = write_spec(tmp_path, server.url, job=job)
    with pytest.raises(InputError, match=message) as err:
        check_fine_tune(load_spec(spec))
    assert err.value.file == str(spec) and err.value.field == f"search.fine_tune.jobs[0].{field}"
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert f"search.fine_tune.jobs[0].{field}" in said and message in said and "spec.yaml" in said


def test_a_good_provider_job_validates_and_its_dry_run_estimate_has_tokens_dollars_and_unknown_seconds(
    server, tmp_path
):
    spec = write_spec(tmp_path, server.url)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    loaded = load_spec(spec)
    estimate = estimate_run(loaded, load_and_check(loaded), trials=4, top_k=1, backend=get_backend())["fine_tune"][
        "tuned"
    ]
    examples_ = training_examples(loaded, load_and_check(loaded), loaded.spec.search.fine_tune.jobs[0], PrePass((), ()))
    assert estimate["rows"] == len(examples_) == 12 and estimate["epochs"] == 2
    assert (
        estimate["training_tokens"] > 12 * 2 * 5
        and estimate["train_s"] is None
        and "unknown" in estimate["train_s_note"]
    )
    assert estimate["usd"] == pytest.approx(estimate["training_tokens"] * PRICE / 1e6, abs=1e-6)
    assert sum(server.counts.values()) == 0  # estimating calls nothing


def test_a_task_model_without_a_supported_fine_tuning_api_is_named_as_the_jobs_base(server, tmp_path):
    spec = write_spec(tmp_path, server.url, job={"price_per_1m_training_tokens": 1.0})
    data = yaml.safe_load(spec.read_text())
    data["task"]["model"] = "anthropic/claude-3-5-haiku"
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"\(the task's model; set base\) cannot be fine-tuned") as err:
        check_fine_tune(load_spec(spec))
    assert err.value.field == "search.fine_tune.jobs[0].base"


class FlakyPolls(LiteLLMFineTuneAPI):
    """Every other poll fails as the provider's rate limit (``retryable``), or as a 400 (not)."""

    def __init__(self, *, api_base: str, retryable: bool) -> None:
        super().__init__(api_base=api_base)
        self.retryable, self.polls = retryable, 0

    async def retrieve(self, job_id: str) -> ProviderJob:
        self.polls += 1
        if self.polls % 2:
            raise ModelCallError("429 rate limited" if self.retryable else "400 bad request", retryable=self.retryable)
        return await super().retrieve(job_id)


def test_a_retryable_error_while_polling_is_polled_through(server, tmp_path):
    tuned = train(server, api=FlakyPolls(api_base=server.url, retryable=True))
    assert tuned.job_id == "ftjob-1" and not tuned.reused and server.counts["jobs.retrieve"] == 3


def test_another_error_while_polling_stops_but_keeps_the_job_to_follow_on_the_next_run(server, tmp_path):
    with pytest.raises(EvalFailed, match="following it failed .*400 bad request.* run again to follow the same job"):
        train(server, api=FlakyPolls(api_base=server.url, retryable=False))
    [record] = records(tmp_path)
    assert json.loads(record.read_text())["job_id"] == "ftjob-1"
    assert train(server).job_id == "ftjob-1" and server.counts["jobs.create"] == 1
