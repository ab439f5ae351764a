"""The eval engine: one configuration over one split as a full, cached, recorded, resumable eval."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptopt.cache import CacheEntry, cache_key
from promptopt.config import PipelineConfig, PromptConfig, TaskConfig
from promptopt.data import Case, Split, content_hash
from promptopt.engine._limits import LocalLimiter
from promptopt.engine._parse import parse_output
from promptopt.engine._pipeline import close_functions, resolve, run_case
from promptopt.engine._result import EvalResult, EvalSummary, RowResult
from promptopt.engine._services import Origin, Services
from promptopt.errors import BudgetExceeded, EvalFailed, ModelCallError
from promptopt.models import Constraint, ModelBackend, ModelRequest, ModelResponse
from promptopt.scorers import ScoreInput, Scorer
from promptopt.secrets import scrub_secrets


@dataclass
class PaidCalls:
    """Model calls sent (cache misses, each attempt, as the budget counts them) and the dollars they cost."""

    calls: int = 0
    usd: float = 0.0


_PAYING: contextvars.ContextVar[PaidCalls | None] = contextvars.ContextVar("paying", default=None)


@contextlib.contextmanager
def paying() -> Iterator[PaidCalls]:
    """Count what evaluators send to a model inside this block, in this task and the tasks it starts (the
    innermost block counts): a row's judge calls, a run's proposal calls."""
    tally = PaidCalls()
    token = _PAYING.set(tally)
    try:
        yield tally
    finally:
        _PAYING.reset(token)


def request_for(config: PromptConfig, case_input: dict[str, Any], timeout_s: float) -> ModelRequest:
    """The model request for one case under ``config``."""
    params = config.params.model_dump(exclude_none=True, exclude={"extra"})
    params.update(config.params.extra)
    if "stop" in params:
        params["stop"] = list(params["stop"])
    constraint = None
    if config.calibration is not None and config.output.type == "label":
        constraint = Constraint(labels=config.output.labels, label_scores=True)
    elif config.constrained and config.output.type == "label":
        constraint = Constraint(labels=config.output.labels)
    elif config.constrained and config.output.type == "json":
        constraint = Constraint(json_schema=config.output.json_schema or {"type": "object"})
    return ModelRequest(
        model=config.model,
        messages=tuple(config.render(case_input)),
        params=params,
        constraint=constraint,
        tools=config.tools,
        response_format=config.response_format,
        timeout_s=timeout_s,
    )


def answer_text(config: PromptConfig, response: ModelResponse) -> str:
    """The answer of ``response`` under ``config``: its text, or for a calibrated configuration the label with
    the best calibrated score (a response without label scores is taken as it is)."""
    if config.calibration is not None and response.label_logprobs:
        return config.calibration.decide(response.label_logprobs)
    return response.text


def fit_label_bias(
    scores: Sequence[Mapping[str, float]], labels: Sequence[str], prior: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Batch calibration: ``bias[l] = log(mean_x p(l | x)) - log(prior[l])`` over the label scores of some inputs,
    ``p`` each input's label scores normalised over the labels, ``prior`` the label shares aimed at (uniform
    when empty). Subtracting it makes the mean calibrated distribution match ``prior``. Empty without scores.

    Example (a model that prefers ``a`` for every input; after the bias, the input it likes ``a`` least is ``b``):
        >>> bias = fit_label_bias([{"a": -0.1, "b": -2.4}, {"a": -0.3, "b": -1.4}], ["a", "b"])
        >>> from promptopt.config import LabelCalibration
        >>> [LabelCalibration(bias=bias).decide(s) for s in ({"a": -0.1, "b": -2.4}, {"a": -0.3, "b": -1.4})]
        ['a', 'b']
    """
    if not scores:
        return {}
    mean = dict.fromkeys(labels, 0.0)
    for row in scores:
        top = max(row[label] for label in labels)
        weights = {label: math.exp(row[label] - top) for label in labels}
        total = sum(weights.values())
        for label in labels:
            mean[label] += weights[label] / total / len(scores)
    shares = {label: (prior or {}).get(label, 0.0) for label in labels}
    if sum(shares.values()) <= 0:
        shares = dict.fromkeys(labels, 1.0)
    norm = sum(shares.values())
    floor = 1e-9
    return {label: math.log(max(mean[label], floor)) - math.log(max(shares[label] / norm, floor)) for label in labels}


def backoff_delay(attempt: int, retry_after: float | None, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After wins when it is longer."""
    delay = random.uniform(0, min(cap, base * 2**attempt))
    return max(delay, retry_after or 0.0)


@dataclass
class _Counters:
    model_calls: int = 0
    errors: int = 0


@dataclass(frozen=True)
class _Completion:
    """A response, whether the cache served it, and what the call that produced it cost and took."""

    response: ModelResponse
    hit: bool
    cost_usd: float | None
    latency_s: float | None


class Evaluator:
    """Runs evals on the services it is given; nothing global.

    Example::

        services = Services(backend=get_backend(), cache=get_cache(), records=get_store(None))
        result = asyncio.run(
            Evaluator(services).run(config, dataset.validation, scorers, name="sentiment", dataset_hash=dataset.hash)
        )
    """

    def __init__(self, services: Services, *, flush_every: int = 8) -> None:
        if services.limiter is None:
            services = services.but(limiter=LocalLimiter(services.settings.concurrency))
        self.services, self.flush_every = services, flush_every
        self.backend, self.cache, self.records = services.backend, services.cache, services.records
        self.settings, self.budget, self.limiter = services.settings, services.budget, services.limiter
        self._functions: dict[str, Any] = {}

    async def run(
        self,
        config: TaskConfig,
        split: Split,
        scorers: list[Scorer],
        *,
        name: str,
        dataset_hash: str,
        origin: Origin = Origin(),
        on_row: Callable[[RowResult], None] | None = None,
    ) -> EvalResult:
        """Evaluate ``config`` on every case of ``split`` (times ``settings.repeats``).

        Raises:
            EvalFailed: more rows failed than ``settings.max_error_rate`` allows (recorded as failed).
            BudgetExceeded: the budget ran out before the eval finished (recorded as failed; rows kept).
        """
        t0 = time.monotonic()
        key = content_hash(
            {
                "config": config.hash,
                "split": split.hash,
                "repeats": self.settings.repeats,
                "scorers": [[s.name, s.weight, type(s).__name__] for s in scorers],
                "run": origin.run_id,
                "trial": origin.trial,
                "role": origin.role.value,
            }
        )
        if isinstance(config, PipelineConfig):  # an unusable or changed function fails before anything is recorded
            resolve(config, self._functions, self.settings)
        counters = _Counters()
        if isinstance(config, PromptConfig) and config.calibration is not None and not config.calibration.fitted:
            config = await self._fit_calibration(config, split, counters)
            key = content_hash({"fitted": key, "config": config.hash})
        exp_id, done_rows = self._begin(key, config, split, name, dataset_hash, origin)
        done = {(r.case_id, r.repeat): r for r in done_rows}
        todo = [(c, k) for c in split.cases for k in range(self.settings.repeats) if (c.id, k) not in done]
        counters.errors = sum(r.error is not None for r in done.values())
        total = len(split.cases) * self.settings.repeats
        pending: list[RowResult] = []
        results: dict[tuple[str, int], RowResult] = dict(done)
        for row in done.values():
            if on_row:
                on_row(row)

        budget_stop: list[BudgetExceeded] = []

        async def one(case: Case, repeat: int) -> None:
            try:
                row = await self._row(config, case, repeat, scorers, counters)
            except BudgetExceeded as exc:
                budget_stop.append(exc)  # in-flight calls finish and are kept; nothing new is sent
                return
            results[(case.id, repeat)] = row
            pending.append(row)
            if row.error is not None:
                counters.errors += 1
            if len(pending) >= self.flush_every:
                self._flush(exp_id, pending)
            if on_row:
                on_row(row)
            if counters.errors > self.settings.max_error_rate * total:
                raise EvalFailed(
                    f"{counters.errors} of {total} rows failed, over the allowed error rate "
                    f"{self.settings.max_error_rate:.0%}; last error: {row.error}"
                )

        failure: EvalFailed | BudgetExceeded | None = None
        tasks = [asyncio.create_task(one(c, k)) for c, k in todo]
        try:
            for fut in asyncio.as_completed(tasks):
                await fut
        except EvalFailed as exc:
            failure = exc
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._flush(exp_id, pending)
        if failure is None and budget_stop:
            failure = budget_stop[0]
        ordered = [
            results[(c.id, k)] for c in split.cases for k in range(self.settings.repeats) if (c.id, k) in results
        ]
        summary = EvalSummary.from_rows(
            ordered, [s.name for s in scorers], model_calls=counters.model_calls, wall_s=time.monotonic() - t0
        )
        status = "finished" if failure is None else "failed"
        if self.records is not None:
            self.records.finish_experiment(
                exp_id, summary, status=status, error_message=None if failure is None else str(failure)
            )
        if failure is not None:
            failure.experiment_id = exp_id
            raise failure
        return EvalResult(
            experiment_id=exp_id,
            config_hash=config.hash,
            split=split.name,
            dataset_hash=dataset_hash,
            rows=tuple(ordered),
            summary=summary,
            status=status,
            calibration=config.calibration if isinstance(config, PromptConfig) else None,
        )

    async def _fit_calibration(self, config: PromptConfig, split: Split, counters: _Counters) -> PromptConfig:
        """``config`` with its label bias fitted on the label scores of ``split``'s inputs (their expected labels
        are never read). The calls go through the cache, so the eval that follows sends none of its own; a case
        whose call fails is left out here (its row records the failure)."""
        assert config.calibration is not None and config.output.labels is not None

        async def scores(case: Case) -> dict[str, float] | None:
            try:
                request = request_for(config, case.input, self.settings.timeout_s)
                return (await self._complete(request, 0, counters)).response.label_logprobs
            except (KeyError, ModelCallError, BudgetExceeded):
                return None

        found = [s for s in await asyncio.gather(*(scores(c) for c in split.cases)) if s]
        calibration = config.calibration.model_copy(
            update={
                "bias": fit_label_bias(found, config.output.labels, config.calibration.prior),
                "fitted_on": f"{split.name}: {len(found)} inputs",
            }
        )
        return config.model_copy(update={"calibration": calibration})

    def _begin(
        self, key: str, config: TaskConfig, split: Split, name: str, dataset_hash: str, origin: Origin
    ) -> tuple[str, list[RowResult]]:
        if self.records is None:
            return "mem-" + key[:16], []
        return self.records.begin_experiment(
            key=key,
            name=name,
            config=config.model_dump(mode="json", by_alias=True),
            config_hash=config.hash,
            model=config.model,
            split=split.name,
            dataset_hash=dataset_hash,
            run_id=origin.run_id,
            trial_number=origin.trial,
            role=origin.role,
        )

    def _flush(self, exp_id: str, pending: list[RowResult]) -> None:
        if pending and self.records is not None:
            batch = list(pending)
            pending.clear()
            self.records.add_rows(exp_id, batch)
        else:
            pending.clear()

    async def _row(
        self, config: TaskConfig, case: Case, repeat: int, scorers: list[Scorer], counters: _Counters
    ) -> RowResult:
        base = {"case_id": case.id, "repeat": repeat, "input": case.input, "expected": case.expected}
        if isinstance(config, PipelineConfig):
            return await self._code_row(config, case, repeat, scorers, counters, base)
        try:
            request = request_for(config, case.input, self.settings.timeout_s)
        except KeyError as exc:
            return RowResult(**base, error=f"template variable {exc} is not in this case's input")
        try:
            done = await self._complete(request, repeat, counters)
        except ModelCallError as exc:
            return RowResult(**base, error=scrub_secrets(f"model call failed: {exc}"))
        response, hit = done.response, done.hit
        text = answer_text(config, response)
        parsed, parse_error = parse_output(text, config.output)
        usage = {
            "output": text,
            "parsed": parsed,
            "parse_error": parse_error,
            "cache_hit": hit,
            "task_prompt_tokens": response.prompt_tokens,
            "task_completion_tokens": response.completion_tokens,
            "task_cost_usd": 0.0 if hit else response.cost_usd,
            "latency_s": 0.0 if hit else response.latency_s,
            "call_cost_usd": done.cost_usd,
            "call_latency_s": done.latency_s,
        }
        return await self._score(base | usage, case, scorers)

    async def _code_row(
        self,
        config: PipelineConfig,
        case: Case,
        repeat: int,
        scorers: list[Scorer],
        counters: _Counters,
        base: dict[str, Any],
    ) -> RowResult:
        """A code task's row: its function run on the case, each prompt call through :meth:`_complete`."""

        async def complete(request: ModelRequest) -> _Completion:
            return await self._complete(request, repeat, counters)

        fields, error = await run_case(
            resolve(config, self._functions, self.settings),
            config,
            case,
            request_for=request_for,
            complete=complete,
            timeout_s=self.settings.timeout_s,
        )
        if error is not None:
            return RowResult(**base, **fields, error=error)
        return await self._score(base | fields, case, scorers)

    async def _score(self, row: dict[str, Any], case: Case, scorers: list[Scorer]) -> RowResult:
        inp = ScoreInput(
            input=case.input,
            output=row["output"],
            parsed=row["parsed"],
            expected=case.expected,
            metadata=case.metadata,
            trace=row.get("trace") or (),
        )
        with paying() as judged:
            outcomes = await asyncio.gather(*(s.score(inp) for s in scorers), return_exceptions=True)
        row["scorer_calls"] = judged.calls
        scores, errors = {}, []
        for scorer, out in zip(scorers, outcomes, strict=True):
            if isinstance(out, BaseException):
                errors.append(f"scorer {scorer.name} failed: {out}")
                continue
            scores[scorer.name] = out.value
            row["scorer_prompt_tokens"] = row.get("scorer_prompt_tokens", 0) + out.prompt_tokens
            row["scorer_completion_tokens"] = row.get("scorer_completion_tokens", 0) + out.completion_tokens
            row["scorer_cost_usd"] = row.get("scorer_cost_usd", 0.0) + out.cost_usd
        if errors:
            return RowResult(**row, scores=scores, error=scrub_secrets("; ".join(errors)))
        weight = sum(s.weight for s in scorers)
        objective = sum(scores[s.name] * s.weight for s in scorers) / weight
        return RowResult(**row, scores=scores, objective=objective)

    def close(self) -> None:
        """Stop what this evaluator started outside the event loop (an isolated task's worker processes)."""
        close_functions(self._functions)

    def as_backend(self) -> ModelBackend:
        """This evaluator as a backend for scorers (a judge): its calls get the cache, the budget, the
        per-model limit and retries, and are not counted as task calls."""
        return _GuardedBackend(self)

    async def complete(
        self, request: ModelRequest, repeat: int = 0, counters: _Counters | None = None
    ) -> tuple[ModelResponse, bool]:
        """One model call through the cache, the budget, the limiter and retries; returns (response, hit).

        Used for every call the package makes (task rows, proposers, bootstrapping), so that none of them
        escapes the budget or pays twice.
        """
        done = await self._complete(request, repeat, counters)
        return done.response, done.hit

    async def _complete(self, request: ModelRequest, repeat: int, counters: _Counters | None) -> _Completion:
        key = cache_key(request, repeat)
        cached = self.cache.get(key)
        if cached is not None:
            entry = CacheEntry.load(cached)
            cost = entry.cost_usd
            if cost is None:  # an entry written without its cost: what the backend's prices make of its tokens
                cost = self.backend.estimate_cost(request, entry.response.completion_tokens)
            return _Completion(entry.response, True, cost, entry.latency_s)
        response = await self._call(request, counters or _Counters())
        self.cache.set(key, CacheEntry.of(response).dump())
        return _Completion(response, False, response.cost_usd, response.latency_s)

    async def _call(self, request: ModelRequest, counters: _Counters) -> ModelResponse:
        assert self.limiter is not None
        attempt = 0
        while True:
            # Token counting costs ~0.2 ms a call: only pay it when a budget will read the estimate.
            estimate = (
                self.backend.estimate_cost(request, int(request.params.get("max_tokens", 16)))
                if self.budget is not None
                else 0.0
            )
            try:
                async with self.limiter.slot(request.model):
                    # Reserved only once a slot is free: the budget sees calls in the order they are sent.
                    if self.budget is not None:
                        self.budget.reserve(1, estimate)
                    counters.model_calls += 1
                    if (tally := _PAYING.get()) is not None:
                        tally.calls += 1
                    response = await asyncio.wait_for(self.backend.complete(request), request.timeout_s)
            except (ModelCallError, TimeoutError) as exc:
                if self.budget is not None:
                    self.budget.settle(estimate, 0.0)
                err = (
                    exc
                    if isinstance(exc, ModelCallError)
                    else ModelCallError(f"timed out after {request.timeout_s:g} s", retryable=True)
                )
                if not err.retryable or attempt >= self.settings.retries:
                    raise ModelCallError(
                        f"{err} (after {attempt + 1} attempt(s))", retryable=False, status=err.status
                    ) from exc
                await asyncio.sleep(backoff_delay(attempt, err.retry_after))
                attempt += 1
                continue
            if self.budget is not None:
                self.budget.settle(estimate, response.cost_usd)
            if (tally := _PAYING.get()) is not None:
                tally.usd += response.cost_usd
            return response


class _GuardedBackend(ModelBackend):
    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    async def complete(self, request: ModelRequest) -> ModelResponse:
        response, hit = await self.evaluator.complete(request)
        return response.model_copy(update={"cost_usd": 0.0}) if hit else response

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return self.evaluator.backend.estimate_cost(request, completion_tokens)
