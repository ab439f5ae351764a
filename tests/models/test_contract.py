"""The ModelBackend contract, run against every implementation (the litellm one over the fake server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from promptopt.errors import ModelCallError
from promptopt.models import LiteLLMBackend, ModelBackend, ModelRequest, ModelResponse, ScriptedBackend


@dataclass
class Case:
    backend: ModelBackend
    request: Callable[[str], ModelRequest]  # scenario ("ok-3", "status-429", ...) -> request


def _scripted_answer(request: ModelRequest) -> str | ModelCallError:
    scenario = request.model.removeprefix("openai/")
    if scenario.startswith("status-"):
        status = int(scenario.split("-")[1])
        retryable = status == 429 or status >= 500
        return ModelCallError(scenario, retryable=retryable, retry_after=2.0 if status == 429 else None, status=status)
    return f"answer from {scenario}"


@pytest.fixture(params=["scripted", "litellm"])
def case(request, fake_server) -> Case:
    messages = ({"role": "user", "content": "hi"},)
    if request.param == "scripted":
        return Case(
            ScriptedBackend(respond=_scripted_answer),
            lambda scenario: ModelRequest(model=f"openai/{scenario}", messages=messages),
        )
    return Case(
        LiteLLMBackend(),
        lambda scenario: ModelRequest(
            model=f"openai/{scenario}", messages=messages, params={"api_base": fake_server.base_url}
        ),
    )


def test_success_returns_a_response(run, case):
    response = run(case.backend.complete(case.request("ok")))
    assert isinstance(response, ModelResponse) and response.text == "answer from ok"


def test_rate_limit_is_retryable_with_retry_after(run, case):
    with pytest.raises(ModelCallError) as info:
        run(case.backend.complete(case.request("status-429")))
    assert (info.value.retryable, info.value.retry_after, info.value.status) == (True, 2.0, 429)


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (400, False), (401, False)])
def test_failures_are_typed_errors(run, case, status, retryable):
    with pytest.raises(ModelCallError) as info:
        run(case.backend.complete(case.request(f"status-{status}")))
    assert (info.value.retryable, info.value.status) == (retryable, status)


def test_concurrent_calls_on_one_loop_each_get_their_own_answer(run, case):
    async def together() -> list[str]:
        calls = [case.backend.complete(case.request(f"ok-{i}")) for i in range(16)]
        return [response.text for response in await asyncio.gather(*calls)]

    assert run(together()) == [f"answer from ok-{i}" for i in range(16)]
