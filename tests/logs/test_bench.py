"""Smoke run of experiments/bench_logs.py (SQLite only, a few thousand logs): it runs, loses nothing, and writes
the promised JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_logs_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "bench_logs.py"),
            "--quick",
            "--pg",
            "",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "logs.json").read_text())
    assert data["quick"] is True and {"machine", "date", "commit", "load_average_1min", "markdown"} <= set(data)
    sqlite = data["backends"]["SQLite"]
    for key in ("http_bulk_100", "http_bulk_1", "sdk_over_http", "sdk_into_store"):
        assert sqlite[key]["logs_per_s"] > 0, key
    for key in ("sdk_over_http", "sdk_into_store"):
        assert sqlite[key]["delivered"] and sqlite[key]["dropped"] == 0 and sqlite[key]["rejected"] == 0
    # every log of every run was stored once: two HTTP runs (plus their two warm-up batches each) and two SDK runs
    warm_up = 2 * 100 + 2 * 1
    http = sqlite["http_bulk_100"]["logs"] + sqlite["http_bulk_1"]["logs"] + warm_up
    assert sqlite["stored"] == http + 2 * data["logs_per_sdk_run"]
    assert "| HTTP bulk, batches of 100, 4 connections |" in proc.stdout
