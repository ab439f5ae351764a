"""A run killed with SIGKILL and started again with the same command continues: finished trials are kept,
the interrupted trial is retried, and no call that finished before the kill is paid again."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from promptopt.testing import FakeOpenAIServer
from tests.search.helpers import SPEC

OPTIMIZE = [sys.executable, "-m", "promptopt.cli"]


def completed_trials(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture
def served_spec(tmp_path):
    with FakeOpenAIServer(latency_s=0.03) as server:
        rows = [
            {
                "input": {"text": f"a good film {i}" if i % 2 else f"a dull film {i}"},
                "expected": "positive" if i % 2 else "negative",
            }
            for i in range(40)
        ]
        (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        spec = json.loads(json.dumps(SPEC))
        spec["task"]["model"] = "openai/fake"
        spec["task"]["params"] = {"extra": {"api_base": server.url}}
        spec["budget"] = {"trials": 8}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        yield tmp_path, server


def test_resume_after_sigkill(served_spec):
    tmp, server = served_spec
    db = tmp / "store.db"
    cmd = OPTIMIZE + [
        "run",
        str(tmp / "spec.yaml"),
        "--executor",
        "local",
        "--store",
        f"sqlite:///{db}",
        "--cache",
        str(tmp / "cache"),
        "--json",
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-a-real-key-123456"}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while completed_trials(db) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    kept = completed_trials(db)
    assert kept >= 3
    before = dict(server.bodies)

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    out = json.loads(second.stdout)
    assert out["trials"] == 8 and out["status"] == "finished"
    assert completed_trials(db) >= 8
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select id, status from run").fetchall()
        retried = conn.execute("select count(*) from trial_user_attributes where key = 'retry_of'").fetchone()[0]
    assert runs == [(out["run_id"], "finished")]  # the same run continued, not a new one
    assert retried <= 1  # the trial running at the kill, if any, was queued again
    repaid = [b for b, n in server.bodies.items() if n > 1]
    # Only calls in flight at the moment of the kill (at most eval.concurrency) may be sent again.
    assert len(repaid) <= SPEC["eval"]["concurrency"], len(repaid)
    assert all(before.get(b, 0) >= 1 for b in repaid)
    assert "sk-test-not-a-real-key" not in second.stdout + second.stderr
