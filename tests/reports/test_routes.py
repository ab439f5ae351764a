"""Report routes through FastAPI's TestClient: on a bare app, and mounted in `optimize serve`'s app."""

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from promptopt.reports import RunReport, render_markdown, router
from promptopt.server import create_app


@pytest.fixture(scope="module")
def client(finished):
    _, store, _ = finished
    app = FastAPI()
    app.include_router(router(lambda: store))
    with TestClient(app) as c:
        yield c


def test_run_report_in_three_formats(client, finished):
    result, _, report = finished
    page = client.get(f"/runs/{result.run_id}/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'<tr data-trial="{result.best.trial}">' in page.text and "plotly.js v" in page.text
    md = client.get(f"/runs/{result.run_id[:8]}/report.md")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.text == render_markdown(report)
    data = client.get(f"/runs/{result.run_id}/report.json")
    assert data.status_code == 200
    served = RunReport.model_validate(data.json())
    assert served.model_dump(exclude={"generated_at"}) == report.model_dump(exclude={"generated_at"})


def test_unknown_run_or_prompt_is_a_json_404(client):
    for path in (
        "/runs/0123456789abcdef/report",
        "/runs/0123456789abcdef/report.md",
        "/runs/0123456789abcdef/report.json",
        "/runs/nope/report",
        "/prompts/no-such-prompt/leaderboard",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_prompt_leaderboard_page(client, finished):
    result, _, report = finished
    page = client.get(f"/prompts/{report.name}/leaderboard")
    assert page.status_code == 200 and result.run_id[:8] in page.text and 'id="fig-over_time"' in page.text


def test_mounted_in_the_server_the_routes_follow_its_read_protection(finished):
    result, store, _ = finished
    app = create_app(store, token="t0ken", protect_reads=True, routers=[router(lambda: store)])
    with TestClient(app) as c:
        assert c.get(f"/runs/{result.run_id}/report.json").status_code == 401
        ok = c.get(f"/runs/{result.run_id}/report.json", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200 and json.loads(ok.text)["run_id"] == result.run_id
        missing = c.get("/runs/0123456789abcdef/report", headers={"Authorization": "Bearer t0ken"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
