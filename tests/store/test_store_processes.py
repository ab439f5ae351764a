"""Several processes on one store: creating the schema at once, and a kill right after add_rows."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from promptopt.store import get_store
from promptopt.store._migrate import VERSION_TABLE, current_revision, head_revision

_OPEN_AT = """
import sys, time
from promptopt.store import get_store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
get_store(sys.argv[1]).dispose()
"""

_ADD_ROWS_THEN_DIE = """
import os, signal, sys
from promptopt.engine._result import RowResult
from promptopt.store import get_store
store = get_store(sys.argv[1])
experiment_id, _ = store.begin_experiment(key="killed", name="qa", config={}, config_hash="c", model="m",
                                          split="dev", dataset_hash="d")
store.add_rows(experiment_id, [RowResult(case_id=str(i), input={"i": i}) for i in range(5)])
print(experiment_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_processes_opening_a_fresh_store_at_once_create_the_schema_once(store_url: str, tmp_path: Path) -> None:
    start = time.time() + 2.0  # after every interpreter has imported the package
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, store_url, str(start)], cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    store = get_store(store_url)
    try:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as connection:
            assert connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1
        assert store.list_experiments() == []
    finally:
        store.dispose()


def test_rows_added_before_a_kill_are_resumed(store_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ADD_ROWS_THEN_DIE, store_url], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = get_store(store_url)
    try:
        experiment_id, rows = store.begin_experiment(
            key="killed", name="qa", config={}, config_hash="c", model="m", split="dev", dataset_hash="d"
        )
        assert experiment_id == proc.stdout.strip()
        assert [r.case_id for r in rows] == ["0", "1", "2", "3", "4"]
        assert store.get_experiment(experiment_id).status == "running"
    finally:
        store.dispose()
