"""Benchmark report generation on real runs of 100 and 500 trials, side by side in one process.

The runs are made by the real search (``SearchRun``: Optuna study in the store's SQLite database, every trial a
full eval recorded with its rows, held-out verdict on the test split) on a scripted backend that answers
instantly and charges per model, over a space of 3 models x 4 instructions x few-shot x temperature, with a
small validation split (8 rows; 32 test rows) so that making 500 trials takes about a minute. The random
sampler makes them quickly (TPE's ask grows with the trial count); the report does not depend on the sampler.

Timed, each the median of ``--repeats`` runs in one process: ``build_run_report`` (store + study -> values,
including a bootstrap interval per leaderboard row), ``render_html`` (figures + template; plotly.js is read
once and cached, the first call is reported apart), ``render_markdown`` and ``model_dump_json``.

Usage:
    .venv/bin/python experiments/bench_reports.py            # runs of 100 and 500 trials
    .venv/bin/python experiments/bench_reports.py --quick    # 50 and 150

Writes ``experiments/results/reports.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from promptopt.cache import DiskResponseCache
from promptopt.engine import Services
from promptopt.models import ScriptedBackend
from promptopt.models._base import ModelRequest, ModelResponse
from promptopt.reports import build_run_report, render_html, render_markdown
from promptopt.search import RunOptions, SearchRun
from promptopt.spec import load_spec
from promptopt.store import Store, get_store
from promptopt.validate import load_and_check

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_results import header, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results" / "reports.json"
PRICE = {"fake/small": 0.0002, "fake/medium": 0.001, "fake/large": 0.004}
LATENCY = {"fake/small": 0.08, "fake/medium": 0.3, "fake/large": 0.9}
SKILL = {"fake/small": 0.55, "fake/medium": 0.7, "fake/large": 0.8}
INSTRUCTIONS = [
    "Decide.",
    "Classify the sentiment of the review.",
    "EXPERT: decide the sentiment.",
    "Read carefully, then answer positive or negative.",
]


def spec() -> dict[str, Any]:
    return {
        "task": {
            "name": "bench-reviews",
            "model": "fake/small",
            "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
            "output": {"type": "label", "labels": ["positive", "negative"]},
        },
        "dataset": {"file": "data.jsonl", "split": {"train": 0.5, "validation": 0.1, "test": 0.4}, "seed": 0},
        "scorers": [{"type": "exact_match"}],
        "eval": {"concurrency": 8},
        "search": {
            "instructions": {"variants": INSTRUCTIONS},
            "few_shot": {"max_k": 4, "strategies": ["random", "balanced"], "pool_seeds": 4},
            "models": list(PRICE),
            "temperature": [0.0, 0.3, 0.7, 1.0],
        },
        "budget": {"trials": 10},
    }


def respond(request: ModelRequest) -> str:
    """Right with a probability that grows with the model, the instruction and the examples; deterministic."""
    text = request.messages[-1]["content"]
    i = int(text.split()[-1])
    shots = sum(1 for m in request.messages if m["role"] == "assistant")
    system = request.messages[0]["content"]
    p = SKILL[request.model] + 0.04 * shots + (0.1 if "EXPERT" in system else 0.0)
    p -= 0.05 * float(request.params.get("temperature") or 0.0)
    right = "positive" if i % 2 else "negative"
    lucky = zlib.crc32(f"{system}|{shots}|{request.model}|{i}".encode()) % 1000 / 1000 < p
    return right if lucky else ("negative" if right == "positive" else "positive")


@dataclass
class PricedBackend(ScriptedBackend):
    async def complete(self, request: ModelRequest) -> ModelResponse:
        answer = await super().complete(request)
        return answer.model_copy(update={"cost_usd": PRICE[request.model], "latency_s": LATENCY[request.model]})

    def estimate_cost(self, request: ModelRequest, completion_tokens: int) -> float:
        return PRICE[request.model]


def make_run(folder: Path, trials: int, n_rows: int = 80) -> tuple[Store, str, float]:
    """A finished run of ``trials`` trials in ``folder`` (validation split: 8 of ``n_rows``); the seconds it took."""
    rows = [
        {"input": {"text": f"review number {i}"}, "expected": "positive" if i % 2 else "negative"}
        for i in range(n_rows)
    ]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec()))
    loaded = load_spec(folder / "spec.yaml")
    store = get_store(f"sqlite:///{folder / 'runs.db'}")
    search = SearchRun(
        loaded=loaded,
        dataset=load_and_check(loaded),
        options=RunOptions(sampler="random", seed=0, parallel=8, max_trials=trials, top_k=2),
        services=Services(backend=PricedBackend(respond), cache=DiskResponseCache(folder / "cache"), records=store),
    )
    t0 = time.perf_counter()
    result = asyncio.run(search.run())
    return store, result.run_id, time.perf_counter() - t0


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def measure(store: Store, run_id: str, repeats: int) -> dict[str, Any]:
    build_s, report = timed(lambda: build_run_report(store, run_id), repeats)
    html_s, page = timed(lambda: render_html(report), repeats)
    md_s, md = timed(lambda: render_markdown(report), repeats)
    json_s, js = timed(report.model_dump_json, repeats)
    return {
        "trials": len(report.trials),
        "leaderboard_rows": len(report.leaderboard),
        "case_diffs": 0 if report.case_diff is None else report.case_diff.paired_cases,
        "build_s": build_s,
        "html_s": html_s,
        "markdown_s": md_s,
        "json_s": json_s,
        "total_s": build_s + html_s + md_s + json_s,
        "html_bytes": len(page.encode()),
        "markdown_bytes": len(md.encode()),
        "json_bytes": len(js.encode()),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "| trials | leaderboard rows | make run s | build s | html s | markdown s | json s | total s | html MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['trials']} | {r['leaderboard_rows']} | {r['make_run_s']:.1f} | {r['build_s']:.3f} | "
            f"{r['html_s']:.3f} | {r['markdown_s']:.4f} | {r['json_s']:.4f} | {r['total_s']:.2f} | "
            f"{r['html_bytes'] / 1e6:.2f} |"
        )
    big, small = results["runs"][-1], results["runs"][0]
    lines.append("")
    lines.append(
        f"{big['trials']} vs {small['trials']} trials: total {big['total_s'] / small['total_s']:.1f}x for "
        f"{big['trials'] / small['trials']:.1f}x the trials; first render_html (reads plotly.js) "
        f"{results['first_html_s']:.2f} s."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="runs of 50 and 150 trials")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = (50, 150) if args.quick else (100, 500)
    runs = []
    first_html_s = None
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(tmp) / f"run{size}"
            folder.mkdir()
            store, run_id, made = make_run(folder, size)
            print(f"made a run of {size} trials in {made:.1f} s", file=sys.stderr)
            if first_html_s is None:
                report = build_run_report(store, run_id)
                first_html_s, _ = timed(lambda r=report: render_html(r), 1)
            runs.append({**measure(store, run_id, args.repeats), "make_run_s": made})
            store.dispose()
    results = {
        **header(script="bench_reports.py", versions=("optuna", "plotly", "jinja2", "sqlalchemy")),
        "repeats": args.repeats,
        "first_html_s": first_html_s,
        "runs": runs,
    }
    write_result(results, RESULTS)
    print(table(results))


if __name__ == "__main__":
    main()
