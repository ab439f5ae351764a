"""Benchmark parallel trials: trials per minute of a search with 1, 2, 4, 8 trials at once, on local Ray.

Each level runs the same search (the same random-sampler seed, so the same configurations in the same order)
with a fresh store and cache, through ``SearchRun`` with the Ray executor factory that
``optimize run --executor ray --parallel N`` uses, against the loopback server of ``bench_engine.py``
answering after 50 ms (and after 500 ms, closer to a hosted model). A trial evaluates 20 validation rows;
the per-model limit (64 calls in flight across the cluster) is high enough for trials to overlap. One Ray
cluster serves every level; each level's run starts its own trial workers (one per two CPUs by default), and
the benchmark waits for them before the clock starts, timing their start apart; a discarded warm-up run at the
highest level comes first. The in-process executor (``--executor local``) is measured the same way, as the
reference without Ray.

Rate = trials / (first trial eval's start to the last one's end, from the store's records); the time from the
executor being ready to the held-out verdict is reported too. Speed-ups are ratios to the one-trial rate of
the same executor and latency.

Usage:
    .venv/bin/python experiments/bench_parallel.py            # 16 trials at 1, 2, 4, 8; Ray and local; 50, 500 ms
    .venv/bin/python experiments/bench_parallel.py --quick    # 4 trials at 1 and 4, 50 ms, no warm-up

Writes ``<results-dir>/parallel.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "dummy")  # Ray workers inherit it; the loopback server ignores it

import ray  # noqa: E402, TID251 - the benchmark owns the one local cluster all levels share

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import INSTRUCTION, LABELS, ServerProcess, read_rows  # noqa: E402
from make_results import RESULTS_DIR, header, write_result  # noqa: E402

VARIANTS = [
    INSTRUCTION,
    "Classify the sentiment of the movie review.",
    "Positive or negative? Answer in one word.",
    "Read the review and say whether the critic liked the film.",
    "Label the review: positive or negative.",
    "You are a film critic. Is this review positive or negative?",
    "Sentiment of this review?",
    "Decide if the following review is favourable (positive) or not (negative).",
]


def write_spec(folder: Path, url: str, *, rows: int, concurrency: int, trials: int) -> Path:
    import yaml

    data = read_rows(rows + 40 + 2)
    for name, part in (("val", data[:rows]), ("train", data[rows : rows + 40]), ("test", data[rows + 40 :])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    spec = {
        "task": {
            "name": "bench-parallel",
            "model": "openai/fake",
            "prompt": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": "{{text}}"}],
            "params": {"temperature": 0, "max_tokens": 8, "extra": {"api_base": url}},
            "output": {"type": "label", "labels": list(LABELS)},
        },
        "dataset": {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"},
        "scorers": [{"type": "exact_match"}],
        "eval": {"concurrency": concurrency},
        # Hand-written variants and random/balanced few-shot: no proposer, no pre-pass, so the time is the
        # trials'. The space is large enough (8 x 3 x 2 x 4 x 2) that the sampled configurations are distinct.
        "search": {
            "instructions": {"variants": VARIANTS[1:]},
            "few_shot": {"max_k": 2, "strategies": ["random", "balanced"], "pool_seeds": 4},
        },
        "budget": {"trials": trials},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


async def one_level(
    spec: Path, folder: Path, *, parallel: int, trials: int, workers_per_node: int | None, executor: str = "ray"
) -> dict[str, Any]:
    """One search with ``parallel`` trials at once on the Ray or the in-process executor."""
    from promptopt.cache import DiskResponseCache
    from promptopt.engine import Services
    from promptopt.errors import EvalFailed
    from promptopt.models import LiteLLMBackend
    from promptopt.search import LocalExecutor, RunEvent, RunOptions, SearchRun, TestEvalStarted, TrialFinished
    from promptopt.spec import load_spec
    from promptopt.store import get_store
    from promptopt.validate import load_and_check
    from promptopt.workers import ray_executor_factory

    loaded = load_spec(spec)
    dataset = load_and_check(loaded)
    store = get_store(f"sqlite:///{folder}/store.db")
    cache = DiskResponseCache(folder / "cache")
    factory = ray_executor_factory(
        loaded=loaded,
        cache=cache,
        store_url=store.url,
        concurrency=loaded.spec.eval.concurrency,
        workers_per_node=workers_per_node,
    )
    marks: dict[str, float] = {}
    evaluated: list[dict[str, Any]] = []

    def timed_factory(services: Services) -> Any:
        marks["made"] = time.perf_counter()
        made = factory(services) if executor == "ray" else LocalExecutor(services)
        if executor == "ray":
            made.wait_for_workers()  # their start is a per-run cost, timed apart from the trials
        marks["ready"] = time.perf_counter()
        return made

    def on_event(event: RunEvent) -> None:
        if isinstance(event, TrialFinished):
            evaluated.append({"number": event.number, "state": event.status.value, "error": event.error})
        elif isinstance(event, TestEvalStarted):
            marks.setdefault("end", time.perf_counter())

    options = RunOptions(sampler="random", seed=0, parallel=parallel, max_trials=trials)
    search = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=options,
        executor_factory=timed_factory,
        on_event=on_event,
        services=Services(backend=LiteLLMBackend(), cache=cache, records=store),
    )
    start = time.perf_counter()
    try:
        result = await search.run()
    except EvalFailed as exc:  # say why the trials failed, not only that none completed
        errors = sorted({e["error"] for e in evaluated if e.get("error")})
        raise RuntimeError(f"{executor} at parallel {parallel}: {exc}; trial errors: {errors[:3]}") from exc
    finally:
        store.dispose()
    spans = trial_spans(folder / "store.db")
    return {
        **spans,
        "executor": executor,
        "parallel": parallel,
        "trials": result.trials,
        "failed_trials": result.failed_trials,
        "evaluated_trials": len(evaluated),
        "search_s": marks["end"] - marks["ready"],
        "trials_per_min": 60 * result.trials / spans["trials_s"],
        "executor_start_s": marks["ready"] - marks["made"],
        "run_wall_s": time.perf_counter() - start,
        "model_calls": result.model_calls,
    }


def trial_spans(db: Path) -> dict[str, Any]:
    """From the store (each eval's recorded start and end): the time from the first trial's eval starting to
    the last one's finishing, the mean eval time, and how many evals ran at once at most."""
    import sqlite3
    from datetime import datetime

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select trial_number, created_at, finished_at from experiment where split = 'validation' "
            "and trial_number >= 0 and finished_at is not null order by created_at"
        ).fetchall()
    spans = [(datetime.fromisoformat(a).timestamp(), datetime.fromisoformat(b).timestamp()) for _, a, b in rows]
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return {
        "trials_s": max(b for _, b in spans) - min(a for a, _ in spans),
        "mean_eval_s": sum(b - a for a, b in spans) / len(spans),
        "max_evals_at_once": peak,
    }


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from promptopt.workers._cluster import alive_node_cpus, ensure_ray
    from promptopt.workers._worker import workers_for

    ensure_ray(None)  # one cluster for every level (an executor that did not start it leaves it running)
    levels = []
    try:
        for latency in args.latencies:
            server = ServerProcess.aiohttp(latency)
            try:
                levels += measure_latency(args, tmp / f"latency-{latency}", server, latency)
            finally:
                server.stop()
        ray_cpus = int(ray.cluster_resources().get("CPU", 0))
        ray_workers = sum(args.workers_per_node or workers_for(cpus) for cpus in alive_node_cpus().values())
    finally:
        ray.shutdown()
    for lv in levels:
        base = next(
            b
            for b in levels
            if (b["executor"], b["latency_s"]) == (lv["executor"], lv["latency_s"])
            and b["parallel"] == min(args.parallel)
        )
        lv["speedup"] = lv["trials_per_min"] / base["trials_per_min"]
        lv["ideal_speedup"] = ideal_speedup(lv, base, concurrency=args.concurrency, rows=args.rows)
    return {"levels": levels, "ray_cpus": ray_cpus, "ray_workers": ray_workers}


def ideal_speedup(level: dict[str, Any], base: dict[str, Any], *, concurrency: int, rows: int) -> float:
    """What overlap allows: every trial of a batch runs at once (on either executor), and the per-model limit
    lets at most concurrency / rows trials' calls be in flight together."""

    def overlap(parallel: int) -> float:
        return max(1.0, min(parallel, concurrency / rows))

    return round(overlap(level["parallel"]) / overlap(base["parallel"]), 2)


def measure_latency(args: argparse.Namespace, tmp: Path, server: ServerProcess, latency: float) -> list[dict[str, Any]]:
    tmp.mkdir()
    spec = write_spec(tmp, server.url, rows=args.rows, concurrency=args.concurrency, trials=args.trials)
    top, levels = max(args.parallel), []
    for executor in args.executors:
        if not args.quick:  # warms the OS file cache and the server before any clock
            (tmp / f"warm-{executor}").mkdir()
            asyncio.run(
                one_level(
                    spec,
                    tmp / f"warm-{executor}",
                    parallel=top,
                    trials=top,
                    workers_per_node=args.workers_per_node,
                    executor=executor,
                )
            )
        for parallel in args.parallel:
            folder = tmp / f"{executor}-{parallel}"
            folder.mkdir()
            server.stats(reset=True)
            level = asyncio.run(
                one_level(
                    spec,
                    folder,
                    parallel=parallel,
                    trials=args.trials,
                    workers_per_node=args.workers_per_node,
                    executor=executor,
                )
            )
            level.update(latency_s=latency, peak_in_flight=server.stats()["peak_in_flight"])
            print(
                f"  {latency * 1000:.0f} ms, {executor} parallel {parallel}: {level['trials_s']:.2f} s for "
                f"{level['trials']} trials ({level['trials_per_min']:.1f}/min; {level['search_s']:.2f} s from "
                f"executor to verdict, {level['executor_start_s']:.2f} s to start it), "
                f"peak {level['peak_in_flight']} calls in flight, "
                f"{level['max_evals_at_once']} evals at once, {level['mean_eval_s']:.2f} s per eval",
                file=sys.stderr,
            )
            levels.append(level)
    return levels


def table(results: dict[str, Any]) -> str:
    lines = [
        "| latency ms | executor | parallel | trials s | trials/min | speed-up | ideal | peak in flight |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["levels"]:
        lines.append(
            f"| {r['latency_s'] * 1000:.0f} | {r['executor']} | {r['parallel']} | {r['trials_s']:.2f} "
            f"| {r['trials_per_min']:.1f} "
            f"| {r['speedup']:.2f} "
            f"| {r['ideal_speedup']} | {r['peak_in_flight']} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials", type=int, default=16, help="trials per level (the same at every level)")
    parser.add_argument(
        "--executors",
        nargs="+",
        choices=("ray", "local"),
        default=["ray", "local"],
        help="ray: optimize run's default; local: asyncio tasks in this process (the reference)",
    )
    parser.add_argument("--rows", type=int, default=20, help="validation rows per trial")
    parser.add_argument(
        "--latencies",
        type=float,
        nargs="+",
        default=[0.05, 0.5],
        help="seconds the server waits per call; one series per value",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight per model, cluster-wide")
    parser.add_argument(
        "--workers-per-node",
        type=int,
        default=None,
        help="Ray trial workers per node (default, as optimize run: one per two CPUs)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials at 1 and 4, 50 ms, no warm-up")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.parallel, args.trials, args.latencies = [1, 4], 4, [0.05]
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = {
        **header(script="bench_parallel.py", versions=("ray", "optuna", "litellm")),
        "quick": args.quick,
        "trials": args.trials,
        "validation_rows": args.rows,
        "latencies_s": args.latencies,
        "concurrency": args.concurrency,
        "workers_per_node": args.workers_per_node,
        "sampler": "random",
    }
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        results.update(measure(args, Path(tmp)))
    write_result(results, args.results_dir / "parallel.json")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
