"""The HTTP API on a real uvicorn server: reads with ETags, label moves behind the token, invoke through a
loopback model, and JSON errors with the right status (never a 500 for our errors)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends
from sqlalchemy.exc import OperationalError

from promptopt.errors import InputError, ModelCallError, NotFound, OptimizeError
from promptopt.registry import LabelConflict
from promptopt.server import create_app, read_access, serve_in_thread
from promptopt.store import get_store
from tests.server.helpers import AUTH, Served, served


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


def test_reads(http: httpx.Client) -> None:
    prompts = http.get("/v1/prompts").json()
    assert [(p["name"], p["latest_version"], p["labels"]) for p in prompts] == [
        ("greet", 1, {}),
        ("support-triage", 2, {"production": 1, "staging": 2}),
    ]
    assert http.get("/v1/prompts/support-triage").json()["version"] == 1  # the production label by default
    assert http.get("/v1/prompts/support-triage", params={"label": "staging"}).json()["version"] == 2
    pinned = http.get("/v1/prompts/support-triage", params={"version": 2}).json()
    assert pinned["config"]["messages"][0]["content"] == "Answer positive or negative."
    assert [v["version"] for v in http.get("/v1/prompts/support-triage/versions").json()] == [1, 2]
    assert [e["label"] for e in http.get("/v1/prompts/support-triage/history").json()] == ["production", "staging"]


def test_render_returns_messages_and_call_parameters(http: httpx.Client, server: Served) -> None:
    body = http.post("/v1/prompts/support-triage/render", json={"variables": {"text": "great"}}).json()
    assert body["version"] == 1 and body["messages"][-1] == {"role": "user", "content": "Review: great"}
    assert body["params"] == {"model": "openai/fake", "temperature": 0.0, "max_tokens": 8, "api_base": server.model.url}


def test_etag_and_if_none_match(http: httpx.Client, server: Served) -> None:
    missing = http.get("/v1/prompts/greet")  # greet has no production label
    assert missing.status_code == 404 and "etag" not in missing.headers
    first = http.get("/v1/prompts/greet", params={"version": 1})
    etag = first.headers["etag"]
    again = http.get("/v1/prompts/greet", params={"version": 1}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (
        http.get(
            "/v1/prompts/greet", params={"version": 1}, headers={"If-None-Match": f'"other", W/{etag}'}
        ).status_code
        == 304
    )
    listing = http.get("/v1/prompts")
    assert http.get("/v1/prompts", headers={"If-None-Match": listing.headers["etag"]}).status_code == 304
    http.post("/v1/prompts/greet/labels/canary", json={"version": 1}, headers=AUTH).raise_for_status()
    changed = http.get("/v1/prompts", headers={"If-None-Match": listing.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != listing.headers["etag"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v1/prompts/nope", {}, "no prompt named 'nope'"),
        ("/v1/prompts/support-triage", {"label": "canary"}, "no label 'canary'"),
        ("/v1/prompts/support-triage", {"version": 9}, "no version 9"),
        ("/v1/prompts/nope/versions", {}, "no prompt named 'nope'"),
        ("/v1/nowhere", {}, "Not Found"),
    ],
)
def test_unknown_things_are_404(http: httpx.Client, path: str, params: dict, message: str) -> None:
    assert message in error_of(http.get(path, params=params), 404)["message"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("GET", "/v1/prompts/support-triage", {"params": {"label": "production", "version": 1}}, "version"),
        ("GET", "/v1/prompts/support-triage", {"params": {"version": 0}}, "query.version"),
        ("GET", "/v1/prompts/support-triage", {"params": {"label": "Prod"}}, "query.label"),
        ("GET", "/v1/prompts/bad%20name", {}, "path.name"),
        ("POST", "/v1/prompts/support-triage/render", {"json": {"variables": {}}}, "variables.text"),
        ("POST", "/v1/prompts/support-triage/render", {"json": {"variables": [1]}}, "body.variables"),
        ("POST", "/v1/prompts/support-triage/render", {"json": {"vars": {}}}, "body.vars"),
        (
            "POST",
            "/v1/prompts/support-triage/render",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "body.1",
        ),
        ("POST", "/v1/prompts/greet/labels/staging", {"json": {"version": "two"}, "headers": AUTH}, "body.version"),
        ("POST", "/v1/prompts/greet/labels/staging", {"json": {}, "headers": AUTH}, "body.version"),
        (
            "POST",
            "/v1/prompts/greet/labels/staging",
            {"json": {"version": 1, "who": "x" * 201}, "headers": AUTH},
            "body.who",
        ),
        ("POST", "/v1/prompts/support-triage/invoke", {"json": {"timeout_s": -1}, "headers": AUTH}, "body.timeout_s"),
    ],
)
def test_bad_requests_are_422_naming_the_field(
    http: httpx.Client, method: str, path: str, kwargs: dict, field: str
) -> None:
    error = error_of(http.request(method, path, **kwargs), 422)
    assert error["field"] == field and error["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/prompts/greet/labels/staging", {"version": 1}),
        ("/v1/prompts/support-triage/labels/staging/rollback", {}),
        ("/v1/prompts/support-triage/invoke", {"variables": {"text": "x"}}),
    ],
)
def test_writes_and_invoke_need_the_token(http: httpx.Client, server: Served, path: str, body: dict) -> None:
    before = (server.registry.history("support-triage"), server.model.requests)
    missing = http.post(path, json=body)
    assert error_of(missing, 401)["code"] == "unauthorized" and missing.headers["www-authenticate"] == "Bearer"
    assert error_of(http.post(path, json=body, headers={"Authorization": "Bearer wrong"}), 403)["code"] == "forbidden"
    assert error_of(http.post(path, json=body, headers={"Authorization": "Basic dXNlcg=="}), 401)
    assert (server.registry.history("support-triage"), server.model.requests) == before


def test_promote_and_rollback_are_audited(http: httpx.Client, server: Served) -> None:
    moved = http.post(
        "/v1/prompts/support-triage/labels/production",
        headers=AUTH,
        json={"version": 2, "why": "wins on test", "who": "alice"},
    ).json()
    assert (moved["from_version"], moved["to_version"], moved["who"], moved["why"]) == (1, 2, "alice", "wins on test")
    assert http.get("/v1/prompts/support-triage").json()["version"] == 2
    back = http.post("/v1/prompts/support-triage/labels/production/rollback", headers=AUTH).json()
    assert (back["kind"], back["from_version"], back["to_version"]) == ("rollback", 2, 1)
    assert back["who"] == "api (127.0.0.1)"
    assert server.registry.get("support-triage", label="production").version == 1


def test_invoke_runs_the_version_through_its_model(http: httpx.Client, server: Served) -> None:
    before = server.model.requests
    answer = http.post(
        "/v1/prompts/support-triage/invoke",
        headers=AUTH,
        json={"variables": {"text": "a great film"}, "label": "staging"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["name"], body["version"], body["text"]) == ("support-triage", 2, "positive")
    assert body["prompt_tokens"] > 0 and server.model.requests == before + 1
    missing = http.post("/v1/prompts/support-triage/invoke", headers=AUTH, json={"variables": {}})
    assert error_of(missing, 422)["field"] == "variables.text" and server.model.requests == before + 1


def test_our_errors_map_to_their_status_through_a_mounted_router(tmp_path: Path) -> None:
    errors = {
        "not-found": NotFound("no such report"),
        "input": InputError("request body", "x", "bad x"),
        "conflict": LabelConflict("moved"),
        "rate": ModelCallError("429", retryable=True, status=429, retry_after=2.0),
        "model": ModelCallError("provider down", retryable=True, status=503),
        "store": OperationalError("SELECT 1", {}, Exception("db down password=hunter22")),
        "other": OptimizeError("refused"),
        "bug": RuntimeError("secret internals"),
    }
    reports = APIRouter(prefix="/v1/reports", dependencies=[Depends(read_access)])

    @reports.get("/{kind}")
    def fail(kind: str) -> None:
        raise errors[kind]

    store = get_store(f"sqlite:///{tmp_path / 'e.db'}")
    expected = {
        "not-found": 404,
        "input": 422,
        "conflict": 409,
        "rate": 429,
        "model": 502,
        "store": 503,
        "other": 400,
        "bug": 500,
    }
    with serve_in_thread(create_app(store, token="t0ken", routers=[reports])) as url:
        for kind, status in expected.items():
            response = httpx.get(f"{url}/v1/reports/{kind}")
            error = error_of(response, status)
            assert "hunter22" not in response.text and "secret internals" not in response.text
            if kind == "rate":
                assert response.headers["retry-after"] == "2"
            if kind == "input":
                assert error["field"] == "x"
    store.dispose()


def test_a_store_that_stops_answering_is_503_not_500(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        server.store.dispose()
        (tmp_path / "registry.db").unlink()  # the next connection finds an empty database: no tables
        for name in ("registry.db-wal", "registry.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        response = httpx.get(f"{server.url}/v1/prompts")
        assert error_of(response, 503)["code"] == "store_unavailable" and response.headers["retry-after"] == "5"


def test_protected_reads_and_read_only_servers(tmp_path: Path) -> None:
    with served(tmp_path / "protected", protect_reads=True) as server:
        assert error_of(httpx.get(f"{server.url}/v1/prompts"), 401)
        assert httpx.get(f"{server.url}/v1/prompts", headers=AUTH).status_code == 200
    with served(tmp_path / "read-only", token=None, read_only=True) as server:
        assert httpx.get(f"{server.url}/v1/prompts/support-triage").status_code == 200
        write = httpx.post(f"{server.url}/v1/prompts/greet/labels/staging", json={"version": 1}, headers=AUTH)
        paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
        assert error_of(write, 404) and not any("labels" in p or "invoke" in p for p in paths)
    store = get_store(f"sqlite:///{tmp_path / 'x.db'}")
    for options in ({"token": None}, {"token": None, "read_only": True, "protect_reads": True}):
        with pytest.raises(InputError, match="bearer token"):
            create_app(store, **options)
    with pytest.raises(InputError, match="no whitespace"):
        create_app(store, token="two words")
    store.dispose()


def test_the_openapi_document_describes_the_api(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert {
        "/v1/prompts",
        "/v1/prompts/{name}",
        "/v1/prompts/{name}/render",
        "/v1/prompts/{name}/labels/{label}",
        "/v1/prompts/{name}/labels/{label}/rollback",
        "/v1/prompts/{name}/invoke",
    } <= set(document["paths"])
    responses = document["paths"]["/v1/prompts/{name}/labels/{label}"]["post"]["responses"]
    assert {"200", "401", "403", "404", "422"} <= set(responses)
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
