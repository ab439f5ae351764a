"""A code task's version over HTTP on a real uvicorn server: served whole in the shape the OpenAPI document
declares, rendered one named prompt at a time, refused by invoke (its function runs in the application), and
listed on the leaderboard."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jsonschema
import pytest

from promptopt.config import PipelineConfig
from promptopt.registry import Lineage, Registry
from promptopt.reports import router as reports_router
from promptopt.server import create_app, serve_in_thread
from promptopt.store import get_store
from promptopt.testing import FakeOpenAIServer
from tests.registry.helpers import bundle
from tests.server.helpers import AUTH, TOKEN, Served, seed

VARIABLES = {"context": "The parcel left Lyon on Monday.", "question": "Where is my parcel?"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The seeded registry plus ``qa-pipeline`` v1 (a bundle, production), with the report routes mounted."""
    store = get_store(f"sqlite:///{tmp_path_factory.mktemp('bundles') / 'registry.db'}")
    registry = Registry(store)
    with pytest.MonkeyPatch.context() as patch, FakeOpenAIServer() as model:
        patch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")  # a dummy, as tests.server.helpers
        seed(registry, model.url)
        registry.register("qa-pipeline", bundle(), lineage=Lineage(test_score=0.5), created_by="seed")
        registry.set_label("qa-pipeline", "production", 1, who="seed")
        app = create_app(store, token=TOKEN, routers=[reports_router(lambda: store)])
        with serve_in_thread(app) as url:
            yield Served(url, store, registry, model)
    store.dispose()


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_get_serves_the_whole_bundle_as_the_openapi_document_declares(http: httpx.Client) -> None:
    response = http.get("/v1/prompts/qa-pipeline")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1 and body["config_hash"] == bundle().hash
    assert body["config"]["function"] == "qa.pipeline:answer" and body["config"]["code_hash"] == "c" * 64
    assert list(body["config"]["prompts"]) == ["rewrite", "answer"]
    assert PipelineConfig.model_validate(body["config"]) == bundle()
    document = http.get("/openapi.json").json()
    schema = document["paths"]["/v1/prompts/{name}"]["get"]["responses"]["200"]["content"]["application/json"]
    jsonschema.validate(body, {**schema["schema"], "components": document["components"]})
    pipeline = document["components"]["schemas"]["PipelineConfig"]
    assert {"function", "code_hash", "prompts"} <= set(pipeline["required"])
    assert pipeline["properties"]["prompts"]["additionalProperties"]["$ref"].endswith("/PromptConfig")
    config = document["components"]["schemas"]["PromptVersion"]["properties"]["config"]
    assert sorted(ref["$ref"].rsplit("/", 1)[1] for ref in config["anyOf"]) == ["PipelineConfig", "PromptConfig"]
    assert "prompt" in document["components"]["schemas"]["RenderRequest"]["properties"]
    again = http.get("/v1/prompts/qa-pipeline", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    versions = http.get("/v1/prompts/qa-pipeline/versions").json()
    assert [PipelineConfig.model_validate(v["config"]).hash for v in versions] == [bundle().hash]


def test_render_of_a_bundle_renders_the_named_prompt(http: httpx.Client) -> None:
    for name in ("rewrite", "answer"):
        response = http.post("/v1/prompts/qa-pipeline/render", json={"prompt": name, "variables": VARIABLES})
        assert response.status_code == 200, response.text
        body = response.json()
        one = bundle().prompt(name)
        assert (body["version"], body["prompt"], body["config_hash"]) == (1, name, bundle().hash)
        assert body["messages"] == one.render(VARIABLES) and body["params"] == one.call_params()


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        (
            "qa-pipeline",
            {"variables": VARIABLES},
            "qa-pipeline v1 is a code task with prompts ['rewrite', 'answer']; say which to render",
        ),
        (
            "qa-pipeline",
            {"prompt": "answr", "variables": VARIABLES},
            "qa-pipeline v1 has no prompt 'answr'; its prompts are ['rewrite', 'answer']",
        ),
        ("support-triage", {"prompt": "answer", "variables": {"text": "x"}}, "support-triage v1 is one prompt"),
    ],
)
def test_render_without_the_right_prompt_is_422_naming_it(
    http: httpx.Client, name: str, body: dict, message: str
) -> None:
    error = error_of(http.post(f"/v1/prompts/{name}/render", json=body), 422)
    assert (error["code"], error["field"]) == ("invalid_request", "prompt") and message in error["message"]


def test_a_missing_variable_of_a_bundles_prompt_is_422_naming_it(http: httpx.Client) -> None:
    response = http.post("/v1/prompts/qa-pipeline/render", json={"prompt": "answer", "variables": {"question": "?"}})
    assert error_of(response, 422)["field"] == "variables.context"


def test_invoke_refuses_a_bundle_without_calling_a_model(http: httpx.Client, server: Served) -> None:
    before = server.model.requests
    refused = http.post("/v1/prompts/qa-pipeline/invoke", headers=AUTH, json={"variables": VARIABLES})
    error = error_of(refused, 422)
    assert error["code"] == "not_invocable"
    assert "function qa.pipeline:answer runs in your application, not on this server" in error["message"]
    with_prompt = http.post("/v1/prompts/qa-pipeline/invoke", headers=AUTH, json={"prompt": "answer", "variables": {}})
    assert error_of(with_prompt, 422)["field"] == "body.prompt"  # invoke takes no prompt name
    assert server.model.requests == before
    one = http.post("/v1/prompts/support-triage/invoke", headers=AUTH, json={"variables": {"text": "a great film"}})
    assert one.status_code == 200 and server.model.requests == before + 1  # one-prompt versions still run


def test_the_leaderboard_lists_a_bundle_version(http: httpx.Client) -> None:
    page = http.get("/prompts/qa-pipeline/leaderboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "qa.pipeline:answer" in page.text and "openai/fake+openai/fake-large" in page.text
