"""experiments/bench_local_model.py runs end to end on a few rows and writes what it promises."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "experiments" / "bench_local_model.py"


@pytest.mark.slow
def test_bench_writes_results_and_reuse_changes_no_answer(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_local_model", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look themselves up there
    spec.loader.exec_module(bench)
    out = tmp_path / "local_model.json"
    bench.main(["--rows", "4", "--overhead-calls", "1", "--out", str(out)])
    results = json.loads(out.read_text())
    assert results["commit"] and results["machine"]["cpu_count"] >= 1
    assert results["overhead"]["classification"]["same_outputs"]  # our path changes no answer
    for part in ("prefix_reuse", "interleaved"):
        assert results[part]["same_outputs"] and results[part]["speedup"] > 0
    assert "| 4-shot SST-2 prompt, 4 rows" in capsys.readouterr().out
