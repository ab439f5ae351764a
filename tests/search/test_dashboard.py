"""optuna-dashboard opens a run's study in the store's database (beside our own tables), over real HTTP."""

import asyncio
import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna_dashboard
import pytest

from promptopt.cache import DiskResponseCache
from promptopt.engine import Services
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, SearchRun, optuna_storage_url
from promptopt.store import get_store
from tests.search.helpers import known_best, loaded_and_data, write_spec


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def dashboard():
    """Serve optuna-dashboard's WSGI app for a storage URL on an ephemeral loopback port; yields get(path)."""
    servers = []

    def open_(url: str):
        server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(url), handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{server.server_port}"

        def get(path: str):
            with urllib.request.urlopen(base + path, timeout=30) as response:  # follows redirects
                assert response.status == 200
                body = response.read()
                return json.loads(body) if path.startswith("/api/") else (response.url[len(base) :], body)

        return get

    yield open_
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_dashboard_lists_the_run_study_with_its_trials(tmp_path, store_url, dashboard):
    loaded, dataset = loaded_and_data(write_spec(tmp_path))
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=RunOptions(seed=0, max_trials=6, top_k=1),
        services=Services(
            backend=ScriptedBackend(known_best),
            cache=DiskResponseCache(tmp_path / "cache"),
            records=get_store(store_url),
        ),
    )
    result = asyncio.run(run.run())

    # the URL a user passes: the store's own for SQLite; for PostgreSQL with the psycopg (3) driver named
    url = optuna_storage_url(store_url)
    assert url == store_url or url.startswith("postgresql+psycopg://")
    get = dashboard(url)
    # the page checks Optuna's schema version first; ours lives in promptopt_alembic_version, so no clash
    page, html = get("/")
    assert page == "/dashboard" and b"<html" in html.lower()
    studies = {s["study_name"]: s for s in get("/api/studies")["study_summaries"]}
    assert list(studies) == [f"run-{result.run_id}"]
    study = studies[f"run-{result.run_id}"]
    assert study["directions"] == ["maximize"]

    detail = get(f"/api/studies/{study['study_id']}")
    complete = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(complete) == result.trials == 6
    # every evaluated configuration's validation score is a trial value (duplicates repeat their twin's)
    values = {t["number"]: t["values"][0] for t in complete}
    assert {c.trial: c.validation_score for c in result.leaderboard}.items() <= values.items()
    assert [t["values"] for t in detail["best_trials"]] == [[result.best.validation_score]]
