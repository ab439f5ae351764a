"""The litellm adapter: every model call, cloud or embedded, goes through ``litellm.acompletion``.

This is the only module that imports litellm: model calls here, and litellm's files and fine-tuning API
(:class:`LiteLLMFineTuneAPI`) for provider fine-tunes. Importing it registers the embedded models as the litellm
custom provider ``local`` (``local/smollm2-135m``); llama.cpp itself is imported on the first local call.

A :class:`~promptopt.models.Constraint` crosses to the local handler as the extra keyword
``promptopt_constraint`` (litellm hands a custom provider's unknown keywords to it in ``optional_params``);
cloud models get its ``json_schema`` as ``response_format``. Labels are enforced by the local model only, and
only the local models score labels (``label_scores``: every label's log-probability, in the choice's ``logprobs``).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

# Without this, importing litellm fetches its price map over the network (retrying for seconds).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402, TID251 - this module is the litellm adapter
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER  # noqa: E402, TID251
from litellm.llms.custom_llm import CustomLLMError  # noqa: E402, TID251

from promptopt.errors import ModelCallError  # noqa: E402
from promptopt.models._base import Constraint, ModelBackend, ModelRequest, ModelResponse  # noqa: E402
from promptopt.models._tuning import FineTuneAPI, JobStatus, ProviderJob  # noqa: E402
from promptopt.secrets import mask_credentials  # noqa: E402

litellm.telemetry = False
litellm.suppress_debug_info = True
for _logger in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    # We map and report every failure ourselves; litellm's own lines would repeat them, keys and all.
    logging.getLogger(_logger).setLevel(logging.CRITICAL)

LOCAL_PROVIDER = "local"
CONSTRAINT_PARAM = "promptopt_constraint"
PREFIX_REUSE_PARAM = "promptopt_prefix_reuse"
_MAX_MESSAGE = 600
_RETRYABLE = (
    litellm.RateLimitError,
    litellm.Timeout,
    litellm.APIConnectionError,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.BadGatewayError,
)
_HINTS = {
    litellm.AuthenticationError: "set the provider's API key in the environment (e.g. OPENAI_API_KEY)",
    litellm.NotFoundError: "check the model name (provider/model: openai/gpt-4o-mini, local/smollm2-135m)",
}


class LiteLLMBackend(ModelBackend):
    """Calls any litellm model (``openai/gpt-4o-mini``, ``anthropic/...``) or the embedded ``local/...`` ones.

    Keys come from the provider's environment variables inside litellm; none is stored, logged or put in an
    error. litellm's own retries are off (``num_retries=0``): the engine retries what :class:`ModelCallError`
    marks ``retryable``.

    Args:
        local_prefix_reuse: For ``local/`` models, reuse evaluated prompt prefixes across calls. ``None``
            follows ``PROMPTOPT_LOCAL_PREFIX_REUSE`` (on unless ``0``).

    Example:
        >>> request = ModelRequest(
        ...     model="local/smollm2-135m",
        ...     messages=({"role": "user", "content": "Hi"},),
        ...     params={"max_tokens": 8, "temperature": 0},
        ... )
        >>> response = await LiteLLMBackend().complete(request)  # doctest: +SKIP
    """

    def __init__(self, *, local_prefix_reuse: bool | None = None) -> None:
        self.local_prefix_reuse = local_prefix_reuse
        register_local_provider()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if request.constraint is not None and request.constraint.label_scores and not is_local(request.model):
            raise ModelCallError(
                f"{request.model}: label scores (a calibrated configuration) are served by the local models only",
                retryable=False,
            )
        start = time.perf_counter()
        try:
            raw = await litellm.acompletion(**self._call_kwargs(request))
        except Exception as exc:  # every provider failure becomes one typed error
            failure = _call_error(exc, request)
        else:
            return _to_response(raw, request, time.perf_counter() - start)
        raise failure  # outside the except block, so the original (key-bearing) exception is not chained

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        """Dollars for the prompt plus ``completion_tokens`` at litellm's prices; 0 if local or unknown."""
        if is_local(request.model):
            return 0.0
        try:
            prompt_tokens = litellm.token_counter(model=request.model, messages=list(request.messages))
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=request.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:  # litellm raises several unrelated types for a model missing from its price map
            return 0.0
        return float(prompt_cost + completion_cost)

    async def aclose(self) -> None:
        """Stop litellm's background logging task on the running loop.

        A loop closed with that task pending can crash CPython 3.11 at exit (a segfault while finalising
        the task); ``asyncio.run`` cancels it anyway, a hand-made loop does not. litellm's shared HTTP
        clients stay open for other backends in the process.
        """
        await asyncio.sleep(0)  # first let the logging hand-offs litellm scheduled after the last call run
        await GLOBAL_LOGGING_WORKER.stop(timeout=5)

    def _call_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **request.params,
            "model": request.model,
            "messages": list(request.messages),
            "timeout": request.timeout_s,
            "num_retries": 0,
        }
        if request.tools is not None:
            kwargs["tools"] = list(request.tools)
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        if is_local(request.model):
            kwargs.update(_local_kwargs(request.constraint, self.local_prefix_reuse))
        elif request.constraint is not None and request.constraint.json_schema is not None:
            kwargs.setdefault("response_format", _response_format(request.constraint.json_schema))
        return kwargs


def is_local(model: str) -> bool:
    """Whether ``model`` names an embedded model (``local/...``)."""
    return model.startswith(f"{LOCAL_PROVIDER}/")


def _local_kwargs(constraint: Constraint | None, prefix_reuse: bool | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if constraint is not None:
        kwargs[CONSTRAINT_PARAM] = constraint.model_dump(mode="json")
    if prefix_reuse is not None:
        kwargs[PREFIX_REUSE_PARAM] = prefix_reuse
    return kwargs


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    # Not "strict": OpenAI's strict mode rejects ordinary schemas (it wants additionalProperties false).
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _label_logprobs_field(scores: dict[str, float]) -> dict[str, Any]:
    """Label scores in OpenAI's ``logprobs`` shape: one answer "token" (the best label) whose ``top_logprobs``
    are every label, so that a response carries them through litellm unchanged."""
    best = max(scores, key=lambda label: scores[label])
    tops = [{"token": label, "logprob": lp, "bytes": None} for label, lp in scores.items()]
    return {"content": [{"token": best, "logprob": scores[best], "bytes": None, "top_logprobs": tops}]}


def _label_logprobs(choice: Any, request: ModelRequest) -> dict[str, float] | None:
    """The label scores a local label-scoring call returned (``None`` for any other call)."""
    constraint = request.constraint
    if constraint is None or not constraint.label_scores or not constraint.labels:
        return None
    content = _field(_field(choice, "logprobs"), "content")
    if not content:
        return None
    scores = {}
    for top in _field(content[0], "top_logprobs") or ():
        token, value = _field(top, "token"), _field(top, "logprob")
        if value is None:
            raise ModelCallError(f"{request.model}: label {token!r} came without a log-probability", retryable=False)
        scores[str(token)] = float(value)
    if set(scores) != set(constraint.labels):
        raise ModelCallError(f"{request.model}: the label scores do not name every label", retryable=False)
    return scores


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` of a dict, ``obj.name`` of litellm's objects, ``None`` when absent."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _to_response(raw: Any, request: ModelRequest, latency_s: float) -> ModelResponse:
    choices = getattr(raw, "choices", None)
    if not choices:
        raise ModelCallError(f"{request.model}: the provider answered with no choices", retryable=True)
    message = choices[0].message
    usage = getattr(raw, "usage", None)
    calls = getattr(message, "tool_calls", None)
    return ModelResponse(
        text=message.content or "",
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cost_usd=_cost(raw, request),
        latency_s=latency_s,
        tool_calls=tuple(_as_dict(call) for call in calls) if calls else None,
        label_logprobs=_label_logprobs(choices[0], request),
    )


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.model_dump() if hasattr(obj, "model_dump") else dict(obj)


def _cost(raw: Any, request: ModelRequest) -> float:
    if is_local(request.model):
        return 0.0
    try:
        cost = litellm.completion_cost(completion_response=raw)
    except Exception:  # a model missing from the price map costs what we cannot know: reported as 0
        return 0.0
    return max(float(cost or 0.0), 0.0)


# --- fine-tuning --------------------------------------------------------------------------------------


class LiteLLMFineTuneAPI(FineTuneAPI):
    """litellm's files and fine-tuning API on an OpenAI-compatible endpoint (``custom_llm_provider="openai"``).

    ``api_base`` ``None`` is OpenAI's own; the key comes from the environment (``OPENAI_API_KEY``) unless
    ``api_key`` is given. litellm 1.110.2 sends no job ``metadata`` to OpenAI (only Azure gets extra fields), so a
    job is told apart by its ``suffix`` (in ``fine_tuned_model``) and its training file's name.
    """

    PAGE = 100

    def __init__(self, *, api_base: str | None = None, api_key: str | None = None) -> None:
        self._kwargs: dict[str, Any] = {"custom_llm_provider": "openai"}
        if api_base:
            self._kwargs["api_base"] = api_base
        if api_key:
            self._kwargs["api_key"] = api_key
        self._api_key = api_key or ""

    async def _call(self, what: str, function: Any, **kwargs: Any) -> Any:
        try:
            return await function(**kwargs, **self._kwargs)
        except Exception as exc:  # every provider failure becomes one typed error
            failure = _mapped_error(exc, what, self._api_key)
        raise failure  # outside the except block: the original exception may carry the key

    async def upload(self, filename: str, data: bytes) -> str:
        file = await self._call("upload", litellm.acreate_file, file=(filename, data), purpose="fine-tune")
        return str(file.id)

    async def file_name(self, file_id: str) -> str:
        file = await self._call(f"file {file_id}", litellm.afile_retrieve, file_id=file_id)
        return str(file.filename)

    async def create(
        self, *, model: str, training_file: str, hyperparameters: dict[str, Any], suffix: str
    ) -> ProviderJob:
        job = await self._call(
            f"fine-tune of {model}",
            litellm.acreate_fine_tuning_job,
            model=model,
            training_file=training_file,
            hyperparameters=hyperparameters,
            suffix=suffix,
        )
        return _job(job)

    async def retrieve(self, job_id: str) -> ProviderJob:
        return _job(await self._call(f"job {job_id}", litellm.aretrieve_fine_tuning_job, fine_tuning_job_id=job_id))

    async def jobs(self) -> AsyncIterator[ProviderJob]:
        after: str | None = None
        while True:
            page = await self._call("job list", litellm.alist_fine_tuning_jobs, after=after, limit=self.PAGE)
            for job in page.data:
                yield _job(job)
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

    async def cancel(self, job_id: str) -> ProviderJob:
        return _job(await self._call(f"job {job_id}", litellm.acancel_fine_tuning_job, fine_tuning_job_id=job_id))

    def count_tokens(self, model: str, messages: list[dict[str, str]]) -> int:
        return int(litellm.token_counter(model=model, messages=messages))


def _job(raw: Any) -> ProviderJob:
    error = getattr(raw, "error", None)
    return ProviderJob(
        id=raw.id,
        status=JobStatus(raw.status),
        model=raw.model,
        training_file=raw.training_file,
        fine_tuned_model=raw.fine_tuned_model,
        trained_tokens=raw.trained_tokens,
        error=getattr(error, "message", None) if error else None,
    )


# --- errors -------------------------------------------------------------------------------------------


def _call_error(exc: Exception, request: ModelRequest) -> ModelCallError:
    return _mapped_error(exc, request.model, str(request.params.get("api_key") or ""))


def _mapped_error(exc: Exception, what: str, api_key: str) -> ModelCallError:
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None  # litellm reports a refused connection as 500
    retryable = isinstance(exc, _RETRYABLE) or status in (408, 429) or (status or 0) >= 500
    hint = next((text for kind, text in _HINTS.items() if isinstance(exc, kind)), "")
    message = mask_credentials(f"{what}: {exc}", extra=[api_key])
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    return ModelCallError(
        f"{message} ({hint})" if hint else message,
        retryable=retryable,
        retry_after=retry_after(exc) if retryable else None,
        status=status,
    )


def retry_after(exc: Exception) -> float | None:
    """Seconds from the ``Retry-After`` (or ``retry-after-ms``) header of the error's response, if any."""
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    ):
        if headers:
            lowered = {str(key).lower(): str(value) for key, value in headers.items()}
            seconds = _parse_retry_after(lowered.get("retry-after-ms"), lowered.get("retry-after"))
            if seconds is not None:
                return seconds
    return None


def _parse_retry_after(milliseconds: str | None, value: str | None) -> float | None:
    try:
        if milliseconds is not None:
            return max(float(milliseconds) / 1000, 0.0)
        if value is not None:
            return max(float(value), 0.0)
    except ValueError:
        pass
    try:  # the HTTP-date form
        when = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0) if when and when.tzinfo else None


# --- the embedded models as a litellm provider --------------------------------------------------------


class _LocalProvider(litellm.CustomLLM):
    """Serves ``local/<name>`` from :mod:`promptopt.models._local`, imported with llama.cpp on first use."""

    # litellm passes everything by keyword; only these are read (the rest of its signature is swallowed).
    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        model_response: Any,
        optional_params: dict[str, Any],
        **_: Any,
    ) -> Any:
        from promptopt.models import _local

        params, constraint, reuse = _split_local_params(optional_params)
        try:
            result = await _local.achat(model, messages, params=params, constraint=constraint, prefix_reuse=reuse)
        except Exception as exc:
            raise _provider_error(exc) from None
        return _fill(model_response, model, result)

    def completion(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        model_response: Any,
        optional_params: dict[str, Any],
        **_: Any,
    ) -> Any:
        from promptopt.models import _local

        params, constraint, reuse = _split_local_params(optional_params)
        try:
            result = _local.get_model(model).chat(messages, params=params, constraint=constraint, prefix_reuse=reuse)
        except Exception as exc:
            raise _provider_error(exc) from None
        return _fill(model_response, model, result)


def _provider_error(exc: Exception) -> CustomLLMError:
    # litellm maps a CustomLLMError by its status; anything else it calls a connection error, traceback and all.
    status = getattr(exc, "status", None)
    status = status if isinstance(status, int) else 500
    return CustomLLMError(status_code=status, message=str(exc) if status != 500 else f"{type(exc).__name__}: {exc}")


def _split_local_params(optional_params: dict[str, Any]) -> tuple[dict[str, Any], Constraint | None, bool | None]:
    params = dict(optional_params)
    raw_constraint = params.pop(CONSTRAINT_PARAM, None)
    reuse = params.pop(PREFIX_REUSE_PARAM, None)
    response_format = params.pop("response_format", None) or {}
    constraint = Constraint.model_validate(raw_constraint) if raw_constraint else None
    schema = (response_format.get("json_schema") or {}).get("schema")
    if constraint is None and response_format.get("type") == "json_schema" and schema:
        constraint = Constraint(json_schema=schema)  # a plain OpenAI response_format works locally too
    return params, constraint, reuse


def _fill(model_response: Any, model: str, result: Any) -> Any:
    model_response.model = f"{LOCAL_PROVIDER}/{model}"
    choice = model_response.choices[0]
    choice.message.content = result.text
    choice.finish_reason = result.finish_reason
    if result.label_logprobs is not None:
        choice.logprobs = _label_logprobs_field(result.label_logprobs)
    model_response.usage = litellm.Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    return model_response


def register_local_provider() -> None:
    """Make ``litellm.acompletion(model="local/...")`` reach the embedded models (idempotent)."""
    if not any(item["provider"] == LOCAL_PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": LOCAL_PROVIDER, "custom_handler": _LocalProvider()},
        ]


register_local_provider()
