"""CI smoke of the benchmark scripts in experiments/: each runs with --quick into a temporary results folder,
and its JSON has the promised keys and sane values; RESULTS.md is written from whatever files exist."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


def run_quick(script: str, results: Path, timeout: float) -> dict:
    # Its own process group: on a timeout the benchmark's servers and workers go with it, not only the script.
    proc = subprocess.Popen(
        [sys.executable, str(EXPERIMENTS / script), "--quick", "--results-dir", str(results)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        pytest.fail(f"{script} --quick took more than {timeout} s: {stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    name = {
        "bench_engine.py": "engine",
        "bench_parallel.py": "parallel",
        "bench_search.py": "search",
        "bench_registry.py": "registry",
    }[script]
    data = json.loads((results / f"{name}.json").read_text())
    assert data["quick"] is True
    assert {"machine", "date", "commit", "load_average_1min"} <= set(data)
    assert set(data["load_average_1min"]) == {"before", "after"}
    return data


def test_engine_quick(tmp_path):
    data = run_quick("bench_engine.py", tmp_path, timeout=400)  # a loaded 2-core machine
    assert [lv["concurrency"] for lv in data["levels"]] == [1, 32]
    for level in data["levels"]:
        for side in ("ours", "dspy"):
            assert 0 < level[side]["efficiency"] <= 1.2, level
            assert level[side]["server_requests"] == data["rows"]  # one call per row, DSPy included
        assert level["ours"]["errors"] == 0
        # The same labels from the same server: the same accuracy (DSPy rounds its score to 0.01 %).
        assert level["ours"]["accuracy"] == pytest.approx(level["dspy"]["accuracy"], abs=1e-3)
        assert level["time_ratio_ours_over_dspy"] > 0
    assert data["calls_per_row"] == {"ours": 1.0, "dspy": 1.0}
    o = data["overhead"]
    assert o["ours_ms_per_row"] > 0 and o["dspy_ms_per_row"] > 0 and o["bare_http_ms_per_call"] > 0
    cached = data["cached_rerun"]
    assert cached["model_calls"] == 0 and cached["server_requests"] == 0 and cached["cache_hits"] == data["rows"]
    assert 0 < data["server_check"]["efficiency"] <= 1.2


def test_registry_quick(tmp_path):
    """SDK lookups in process and HTTP lookups under a real load generator (wrk; bash scripts/dev.sh test
    installs it) against a real server on loopback."""
    committed = EXPERIMENTS / "results" / "registry.json"
    before = committed.read_bytes() if committed.exists() else None
    data = run_quick("bench_registry.py", tmp_path, timeout=300)
    assert (committed.read_bytes() if committed.exists() else None) == before  # a smoke never overwrites results
    sdk, http = data["sdk"], data["http"]
    assert sdk["cached_get"]["n"] == data["lookups"] == 2000
    for figures in sdk.values():
        assert 0 < figures["median_us"] <= figures["p99_us"]
    assert sdk["cached_get"]["median_us"] < sdk["http_fetch_uncached"]["median_us"]  # no round trip when cached
    assert http["load_generator"].startswith("wrk")
    for run in ("200_from_store", "304_if_none_match", "200_one_connection"):
        assert http[run]["requests_per_s"] > 0 and http[run]["non_2xx_3xx"] == 0, http[run]
        assert 0 < http[run]["median_us"] <= http[run]["p99_us"]


def test_parallel_quick(tmp_path):
    data = run_quick("bench_parallel.py", tmp_path, timeout=240)
    levels = {(lv["executor"], lv["parallel"]): lv for lv in data["levels"]}
    assert set(levels) == {("ray", 1), ("ray", 4), ("local", 1), ("local", 4)}
    for level in levels.values():
        assert level["trials"] == data["trials"] == 4 and level["failed_trials"] == 0
        assert level["trials_per_min"] > 0 and level["speedup"] > 0 and level["ideal_speedup"] >= 1
    assert levels["ray", 1]["speedup"] == levels["local", 1]["speedup"] == 1.0
    assert levels["ray", 1]["peak_in_flight"] <= data["validation_rows"]  # one trial at a time
    # In one process the four trials certainly overlap at the server (on Ray that depends on worker start-up).
    assert levels["local", 4]["peak_in_flight"] > data["validation_rows"]
    assert levels["local", 4]["max_evals_at_once"] > 1


def test_search_quick(tmp_path):
    data = run_quick("bench_search.py", tmp_path, timeout=300)
    assert {r["method"] for r in data["runs"]} == {"ours-tpe", "random"}
    for run in data["runs"]:
        assert 0 <= run["test"] <= 1 and 0 <= run["baseline_test"] <= 1
        assert run["model_calls"] >= run["run_model_calls"] > 0 and run["trials"] == 3
        assert run["validation_rows"] == 10 and run["test_rows"] == 10
    assert {(s["dataset"], s["method"]) for s in data["summary"]} == {("sst2", "ours-tpe"), ("sst2", "random")}
    assert "trec" in data["not_measured"] and "MIPROv2" in data["not_measured"]


def test_make_results_says_what_is_missing(tmp_path):
    out = tmp_path / "RESULTS.md"
    subprocess.run(
        [sys.executable, str(EXPERIMENTS / "make_results.py"), "--results-dir", str(tmp_path), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    assert text.count("## ") == 5
    assert text.count("Not measured yet (run: `") == 5
    assert "bash experiments/bench.sh engine" in text


def test_make_results_renders_the_checked_in_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    subprocess.run(
        [sys.executable, str(EXPERIMENTS / "make_results.py"), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    for name in ("engine", "search", "parallel", "registry", "local_model"):
        if (EXPERIMENTS / "results" / f"{name}.json").exists():
            assert "_Measured " in text
    assert "| " in text


def test_mipro_harness_keeps_the_instruction_when_the_proposer_cannot_be_parsed(tmp_path, monkeypatch):
    """MIPROv2 through bench_search.run_mipro against the loopback server, whose answers to the instruction
    proposer are prose DSPy cannot parse (what SmolLM2 does): compile() finishes, the parse errors are counted,
    the seed instruction is kept, and every call that reached the server is counted."""
    import yaml

    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    import bench_engine
    import bench_search

    with bench_engine.ServerProcess.aiohttp(0.0, garble=["proposed_instruction"]) as server:
        spec = bench_search.derived_spec(
            "sst2", tmp_path, validation_rows=6, test_rows=6, trials=2, propose=2, strategies=None, small=False
        )
        data = yaml.safe_load(spec.read_text())
        data["task"]["model"] = "openai/fake"
        data["task"]["params"]["extra"] = {"api_base": server.url}
        spec.write_text(yaml.safe_dump(data))
        out = bench_search.run_mipro(spec, seed=0, trials=2, candidates=2, auto=None, train_rows=12)
        requests = server.stats()["requests"]
    assert out["proposer_parse_errors_caught"] >= 1
    assert out["winner"] == "Is the following movie review positive or negative?"
    assert out["model_calls"] == requests > 6 + 6
    assert out["search_calls"] == out["model_calls"] - 2 * 6  # the baseline's and the winner's test rows
    assert 0 <= out["test"] <= 1 and out["validation_rows"] == 6 and out["test_rows"] == 6


def test_mipro_label_adapter_reads_a_label_without_dspy_markers(monkeypatch):
    """The 135M model rarely writes ChatAdapter's field markers: the benchmark's adapter then takes the first
    label named, as our engine does, and still refuses a reply that names none (or another signature's)."""
    import dspy
    from dspy.utils.exceptions import AdapterParseError

    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import bench_search

    adapter = bench_search.label_adapter(("positive", "negative"))
    answer = dspy.Signature("text -> answer")
    assert adapter.parse(answer, "[[ ## answer ## ]]\nnegative\n\n[[ ## completed ## ]]") == {"answer": "negative"}
    assert adapter.parse(answer, "The sentiment of this review is Positive, clearly.") == {"answer": "positive"}
    with pytest.raises(AdapterParseError):
        adapter.parse(answer, "I cannot tell.")
    with pytest.raises(AdapterParseError):
        adapter.parse(dspy.Signature("text -> proposed_instruction"), "positive")


def test_search_runs_of_two_sittings_make_one_table_with_both_commits(tmp_path, monkeypatch):
    """A long benchmark measured in sittings (seeds 0-1, then --first-seed 2): --from-runs merges them in plan
    order, keeps each run's commit (older files without one take --commit), summarises over all seeds, and
    refuses the same run twice."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import bench_search

    def run(seed, method, test, **extra):
        return {
            "dataset": "sst2",
            "seed": seed,
            "method": method,
            "test": test,
            "validation": test,
            "baseline_test": 0.2,
            "model_calls": 100,
            "search_calls": 80,
            "wall_s": 10.0,
            **extra,
        }

    old = tmp_path / "old.json"
    old.write_text(
        json.dumps(
            {
                "runs": [
                    run(0, "random", 0.6),
                    run(0, "mipro", 0.5, search_calls=431),
                    run(1, "mipro", 0.4, search_calls=494),
                ]
            }
        )
    )
    new = tmp_path / "new.partial.json"
    new.write_text(
        json.dumps([run(2, "mipro", 0.3, commit="abc1234", search_calls=432), run(1, "random", 0.8, commit="abc1234")])
    )

    with pytest.raises(SystemExit, match="pass --commit"):
        bench_search.merge_runs([old, new], None)
    runs = bench_search.merge_runs([old, new], "613784e")
    assert [(r["seed"], r["method"], r["commit"]) for r in runs] == [
        (0, "mipro", "613784e"),
        (0, "random", "613784e"),
        (1, "mipro", "613784e"),
        (1, "random", "abc1234"),
        (2, "mipro", "abc1234"),
    ]
    with pytest.raises(SystemExit, match="also in an earlier file"):
        bench_search.merge_runs([old, old], "613784e")
    assert bench_search.recorded_budgets([old, new]) == {("sst2", 0): 431, ("sst2", 1): 494, ("sst2", 2): 432}

    results = bench_search.main(
        [
            "--datasets",
            "sst2",
            "--methods",
            "mipro",
            "random",
            "--from-runs",
            str(old),
            str(new),
            "--commit",
            "613784e",
            "--results-dir",
            str(tmp_path / "out"),
        ]
    )
    assert results["commit"] == "613784e, abc1234" and results["uncommitted_changes"] is False
    summary = {s["method"]: s for s in results["summary"]}
    assert summary["mipro"]["seeds"] == 3 and summary["mipro"]["test"] == pytest.approx(0.4)
    assert summary["random"]["seeds"] == 2 and summary["random"]["test"] == pytest.approx(0.7)
    assert "random" in results["not_measured"] and "sst2 seed 2" in results["not_measured"]
    assert json.loads((tmp_path / "out" / "search.json").read_text())["commit"] == "613784e, abc1234"


def test_paired_comparison_over_dataset_seed_pairs():
    sys.path.insert(0, str(EXPERIMENTS))
    import bench_search

    def run(method: str, dataset: str, seed: int, test: float) -> dict:
        return {"method": method, "dataset": dataset, "seed": seed, "test": test, "budget_level": "mipro"}

    runs = [run("ours-evolve", d, s, 0.7) for d in ("a", "b") for s in range(3)]
    runs += [run("random", d, s, 0.6) for d in ("a", "b") for s in range(3)]
    runs += [run("random", "c", 0, 0.9), run("mipro", "a", 0, 0.7)]  # no pair for c; one tie with mipro
    by = {p["against"]: p for p in bench_search.paired(runs)}
    assert by["random"]["pairs"] == 6 and by["random"]["wins"] == 6
    assert by["random"]["by_dataset"] == pytest.approx({"a": 0.1, "b": 0.1})
    assert by["random"]["p_value"] == pytest.approx(2 / 64)  # all six one way: 2 of the 64 sign patterns
    assert by["mipro"]["ties"] == 1 and by["mipro"]["p_value"] == 1.0
    assert bench_search.sign_flip_p([0.1, -0.1]) == 1.0


def test_a_seed_without_a_mipro_run_gets_the_mean_of_the_datasets_mipro_budgets():
    sys.path.insert(0, str(EXPERIMENTS))
    import bench_search

    budgets = {("sst2", 0): 431, ("sst2", 1): 429, ("sst2", 2): 392, ("trec", 0): 498}
    plan = [("sst2", 3, "random"), ("sst2", 0, "random"), ("trec", 3, "mipro"), ("trec", 3, "random")]
    # sst2 seed 3: the mean of 431, 429, 392; sst2 seed 0 keeps its own; trec seed 3 runs MIPROv2 itself
    assert bench_search.mean_mipro_budgets(budgets, plan) == {("sst2", 3): 417}


def test_pipeline_sittings_merge_into_one_table_with_paired_comparisons(tmp_path, monkeypatch):
    """bench_pipeline.py --from-runs: runs of two sittings, the joint-vs-last comparison per seed and pooled."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import bench_pipeline

    def run(arm, seed, winner):
        return {
            "arm": arm, "seed": seed, "trials": 8, "model_calls": 100, "wall_s": 1.0,
            "baseline_validation": 0.0, "baseline_test": 0.0, "winner_validation": 0.5,
            "winner_test": sum(winner) / len(winner), "winner": "w",
            "lift": {"mean": 0.5, "ci95": [0.1, 0.9], "p_value": 0.01},
            "test_rows": {"baseline": {}, "winner": {f"c{i}": v for i, v in enumerate(winner)}},
        }  # fmt: skip

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"date": "d1", "commit": "c1", "runs": [run("joint", 0, [1, 1, 0, 1])]}))
    second.write_text(
        json.dumps(
            {"date": "d2", "commit": "c2", "runs": [run("last prompt only", 0, [0, 1, 0, 0]), run("joint", 1, [1])]}
        )
    )
    out = tmp_path / "pipeline.json"
    bench_pipeline.merge([first, second], out)
    merged = json.loads(out.read_text())
    assert [c["seed"] for c in merged["comparisons"]] == [0]  # seed 1 has one arm only
    assert merged["comparisons"][0]["joint_minus_last"] == pytest.approx(0.5)
    assert merged["pooled"]["pairs"] == 4 and merged["pooled"]["seeds"] == [0]
    assert [s["commit"] for s in merged["sittings"]] == ["c1", "c2"]
    assert "| joint | 0 | 8 | 100 |" in merged["markdown"] and "1 of 1 seeds favour joint" in merged["markdown"]
