"""`optimize eval` end to end on a loopback OpenAI-compatible server: JSON output, a cached re-run makes
zero calls, and an eval killed with SIGKILL half-way resumes paying only for unfinished rows."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from promptopt.testing import FakeOpenAIServer

OPTIMIZE = [sys.executable, "-m", "promptopt.cli"]
ROWS = 60


@pytest.fixture
def served(tmp_path):
    with FakeOpenAIServer(latency_s=0.05) as server:
        rows = [
            {
                "input": {"text": f"a good film {i}" if i % 3 else f"a dull film {i}"},
                "expected": "positive" if i % 3 else "negative",
            }
            for i in range(ROWS)
        ]
        (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        spec = {
            "task": {
                "name": "served",
                "model": "openai/fake",
                "prompt": [{"role": "user", "content": "Review: {{text}}"}],
                "params": {"extra": {"api_base": server.url}},
                "output": {"type": "label", "labels": ["positive", "negative"]},
            },
            "dataset": {"validation": "val.jsonl"},
            "scorers": [{"type": "exact_match"}],
            "eval": {"concurrency": 2},
        }
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-a-real-key-123456"}
        yield tmp_path, server, env


def eval_cmd(tmp):
    return OPTIMIZE + [
        "eval",
        str(tmp / "spec.yaml"),
        "--store",
        f"sqlite:///{tmp / 'store.db'}",
        "--cache",
        str(tmp / "cache"),
        "--json",
    ]


def test_eval_json_and_cached_rerun(served):
    tmp, server, env = served
    first = json.loads(subprocess.run(eval_cmd(tmp), env=env, capture_output=True, text=True, check=True).stdout)
    assert first["rows"] == ROWS and first["model_calls"] == ROWS and first["cache_hits"] == 0
    assert first["errors"] == 0 and first["scores"]["exact_match"] == 1.0 and first["objective"] == 1.0
    assert set(first) >= {
        "experiment_id",
        "rows",
        "scores",
        "objective",
        "model_calls",
        "cache_hits",
        "errors",
        "tokens",
        "cost_usd",
        "wall_s",
    }
    assert first["tokens"]["task"] > 0 and first["tokens"]["scorer"] == 0
    second = json.loads(subprocess.run(eval_cmd(tmp), env=env, capture_output=True, text=True, check=True).stdout)
    assert second["model_calls"] == 0 and second["cache_hits"] == ROWS
    assert second["experiment_id"] != first["experiment_id"]
    assert server.requests == ROWS


def recorded_rows(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from row").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_eval_killed_half_way_resumes_without_paying_again(served):
    tmp, server, env = served
    proc = subprocess.Popen(eval_cmd(tmp), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while recorded_rows(tmp / "store.db") < ROWS // 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    paid_before = server.requests
    assert ROWS // 3 <= paid_before < ROWS
    out = json.loads(subprocess.run(eval_cmd(tmp), env=env, capture_output=True, text=True, check=True).stdout)
    assert out["rows"] == ROWS and out["errors"] == 0
    # Rows recorded before the kill are resumed from the store, calls finished before it from the cache:
    # only the unfinished rows are sent (plus at most the calls in flight at the kill).
    assert out["model_calls"] == server.requests - paid_before
    assert server.requests <= ROWS + 2
    repaid = [b for b, n in server.bodies.items() if n > 1]
    assert len(repaid) <= 2
