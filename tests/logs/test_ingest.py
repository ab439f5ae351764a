"""Bulk ingestion over HTTP (a real uvicorn server on loopback): a bad payload gets 422 naming the field and
nothing of its batch is stored; resends are idempotent; writes need the token; secrets are scrubbed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from promptopt.logs import LogQuery, LogStore
from promptopt.store import Store
from tests.schedules.helpers import TOKEN, served

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def good(i: int, **fields) -> dict:
    return {
        "id": f"log-{i}",
        "prompt": "reviews",
        "version": 1,
        "input": {"text": f"review {i}"},
        "output": "positive",
        "model": "fake/m",
        "latency_s": 0.2,
        "tokens": 10,
        "cost_usd": 0.0001,
        "metadata": {"request": i},
        **fields,
    }


@pytest.fixture
def http(store: Store) -> Iterator[httpx.Client]:
    with served(store) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client


def stored(store: Store) -> int:
    return len(LogStore(store).query(LogQuery()))


BAD_LOGS = [
    ({"latency_s": -1}, "body.logs.3.latency_s"),
    ({"prompt": "no spaces allowed"}, "body.logs.3.prompt"),
    ({"input": None}, "body.logs.3.input"),
    ({"tokens": "many"}, "body.logs.3.tokens"),
    ({"cost_usd": float("inf")}, "body.logs.3.cost_usd"),
    ({"metadata": ["not", "an", "object"]}, "body.logs.3.metadata"),
    ({"label": "Production"}, "body.logs.3.label"),
    ({"created_at": "yesterday"}, "body.logs.3.created_at"),
    ({"surprise": 1}, "body.logs.3.surprise"),
]
BAD_BATCHES = [
    ({"logs": []}, "body.logs"),
    ({"rows": [good(0)]}, "body.logs"),
    ({"logs": [{"prompt": "reviews"}]}, "body.logs.0.input"),
]


def test_a_bad_log_gets_422_naming_its_field_and_nothing_of_the_batch_is_stored(
    http: httpx.Client, store: Store
) -> None:
    for bad, field in BAD_LOGS:
        batch = [good(i) for i in range(6)]
        batch[3] = {**batch[3], **bad}
        # json.dumps writes float("inf") as Infinity, which the server must refuse like any other bad value
        response = http.post(
            "/v1/logs:bulk", content=json.dumps({"logs": batch}).encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (bad, response.text)
        error = response.json()["error"]
        assert error["field"] == field and error["message"].startswith(field), (bad, error)
    for body, field in BAD_BATCHES:
        response = http.post("/v1/logs:bulk", json=body)
        assert response.status_code == 422 and response.json()["error"]["field"] == field, (body, response.text)
    assert stored(store) == 0


def test_feedback_on_an_unknown_log_gets_422_and_none_of_the_batch_is_stored(http: httpx.Client, store: Store) -> None:
    assert http.post("/v1/logs:bulk", json={"logs": [good(0), good(1)]}).json() == {"accepted": 2, "duplicates": 0}
    feedback = [
        {"log_id": "log-0", "label": "negative"},
        {"log_id": "log-1", "score": 1.0},
        {"log_id": "log-404", "label": "positive"},
    ]
    response = http.post("/v1/feedback:bulk", json={"feedback": feedback})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body.feedback.2.log_id"
    assert "no log with id 'log-404'" in response.json()["error"]["message"]
    empty = http.post("/v1/feedback:bulk", json={"feedback": [{"log_id": "log-0"}]})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "body.feedback.0"
    assert all(e.feedback is None for e in LogStore(store).query(LogQuery()))


def test_a_resent_batch_is_stored_once_and_the_latest_feedback_wins(http: httpx.Client, store: Store) -> None:
    batch = {"logs": [good(i) for i in range(3)]}
    assert http.post("/v1/logs:bulk", json=batch).json() == {"accepted": 3, "duplicates": 0}
    assert http.post("/v1/logs:bulk", json=batch).json() == {"accepted": 0, "duplicates": 3}
    feedback = [
        {"id": "fb-1", "log_id": "log-0", "label": "positive", "created_at": "2026-01-01T10:00:00Z"},
        {"id": "fb-2", "log_id": "log-0", "corrected": "negative", "score": 0.0, "created_at": "2026-01-01T11:00:00Z"},
    ]
    assert http.post("/v1/feedback:bulk", json={"feedback": feedback}).json() == {"accepted": 2, "duplicates": 0}
    assert http.post("/v1/feedback:bulk", json={"feedback": feedback[:1]}).json() == {"accepted": 0, "duplicates": 1}
    entry = LogStore(store).get("log-0")
    assert entry.feedback.id == "fb-2" and entry.feedback.expected == "negative" and entry.feedback.score == 0.0
    assert entry.metadata == {"request": 0} and entry.latency_s == 0.2 and entry.tokens == 10
    assert stored(store) == 3


def test_writes_need_the_token(http: httpx.Client, store: Store) -> None:
    url = f"{str(http.base_url).rstrip('/')}/v1/logs:bulk"
    anonymous = httpx.post(url, json={"logs": [good(0)]})
    assert anonymous.status_code == 401
    wrong = httpx.post(url, json={"logs": [good(0)]}, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403
    assert stored(store) == 0


def test_the_server_scrubs_api_keys_whoever_sent_them(http: httpx.Client, store: Store) -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwx"
    log = good(
        0,
        input={"text": f"my key is {key}"},
        output=f"echo {key}",
        metadata={"headers": {"Authorization": f"Bearer {key}"}, "api_key": key, "note": f"k={key}"},
    )
    assert http.post("/v1/logs:bulk", json={"logs": [log]}).status_code == 200
    assert http.post("/v1/feedback:bulk", json={"feedback": [{"log_id": "log-0", "corrected": key}]}).status_code == 200
    entry = LogStore(store).get("log-0")
    text = repr(entry.model_dump())
    assert key not in text and "abcdefghijkl" not in text
    assert entry.input == {"text": "my key is [REDACTED]"} and entry.metadata["api_key"] == "[REDACTED]"
    assert entry.feedback.corrected == "[REDACTED]"
