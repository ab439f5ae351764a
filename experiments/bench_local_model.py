"""Benchmark the embedded model (SmolLM2-135M), side by side in one run.

(a) Our path (``LiteLLMBackend`` -> ``litellm.acompletion`` -> the ``local`` provider) against
    llama-cpp-python called directly on the same prompts with the same settings, both with a fresh context per
    call: seconds per classification call (8 new tokens) and generated tokens per second (64-token generations).
    The two run in alternating chunks of five prompts, so drift in machine load hits both alike.
(b) Prefix reuse on a four-example SST-2 prompt over ``--rows`` dev rows: seconds with reuse against without.
(c) The same with two prompt configs interleaved row by row, where only the state cache can find the prefix.

Usage:
    .venv/bin/python experiments/bench_local_model.py --rows 200
    .venv/bin/python experiments/bench_local_model.py --quick

Writes ``experiments/results/local_model.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp  # noqa: TID251 - the baseline is llama.cpp called directly

from promptopt.models import (
    LOCAL_DEFAULT_MODEL,
    Constraint,
    LiteLLMBackend,
    ModelRequest,
    _local,
    local_model_file,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_results import header, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(__file__).resolve().parent / "datasets"  # in the repo; origin and licence in its README.md
RESULTS = REPO / "experiments" / "results" / "local_model.json"
INSTRUCTION = "Classify the sentiment of the movie review as positive or negative. Answer with one word."
OTHER_INSTRUCTION = "Is the following movie review positive or negative? Reply with a single word."
LABELS = Constraint(labels=("positive", "negative"))
WARM_UP = [[{"role": "user", "content": "Hello!"}]]
Messages = list[dict[str, str]]


@dataclass
class Timing:
    seconds: float
    completion_tokens: int
    texts: list[str]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def few_shot(train: Sequence[dict[str, Any]], per_label: int = 2) -> Messages:
    """The first ``per_label`` training examples of each label, alternating, as chat turns."""
    labels = LABELS.labels or ()
    by_label = {label: [r for r in train if r["expected"] == label][:per_label] for label in labels}
    turns: Messages = []
    for pair in zip(*by_label.values(), strict=True):
        for row in pair:
            turns += [
                {"role": "user", "content": row["input"]["text"]},
                {"role": "assistant", "content": row["expected"]},
            ]
    return turns


def prompt(text: str, *, instruction: str = INSTRUCTION, shots: Messages | None = None) -> Messages:
    return [{"role": "system", "content": instruction}, *(shots or []), {"role": "user", "content": text}]


def run_ours(
    runner: asyncio.Runner,
    backend: LiteLLMBackend,
    prompts: Sequence[Messages],
    *,
    max_tokens: int,
    constraint: Constraint | None = None,
) -> Timing:
    start, tokens, texts = time.perf_counter(), 0, []
    for messages in prompts:
        request = ModelRequest(
            model=LOCAL_DEFAULT_MODEL,
            messages=tuple(messages),
            constraint=constraint,
            params={"temperature": 0, "max_tokens": max_tokens},
        )
        response = runner.run(backend.complete(request))
        tokens, texts = tokens + response.completion_tokens, [*texts, response.text]
    return Timing(time.perf_counter() - start, tokens, texts)


def run_direct(llama: llama_cpp.Llama, prompts: Sequence[Messages], *, max_tokens: int) -> Timing:
    start, tokens, texts = time.perf_counter(), 0, []
    for messages in prompts:
        llama.reset()  # a fresh context, like our path with prefix reuse off
        out = llama.create_chat_completion(messages=messages, temperature=0, max_tokens=max_tokens, seed=_local.SEED)
        tokens += out["usage"]["completion_tokens"]
        texts.append(out["choices"][0]["message"]["content"] or "")
    return Timing(time.perf_counter() - start, tokens, texts)


def alternate(
    first: Callable[[Sequence[Messages]], Timing],
    second: Callable[[Sequence[Messages]], Timing],
    prompts: Sequence[Messages],
    chunk: int = 5,
) -> tuple[Timing, Timing]:
    """Run both on the same prompts in alternating chunks, so drift in machine speed hits both alike."""
    totals = [Timing(0.0, 0, []), Timing(0.0, 0, [])]
    for i in range(0, len(prompts), chunk):
        for total, fn in zip(totals, (first, second), strict=True):
            part = fn(prompts[i : i + chunk])
            total.seconds += part.seconds
            total.completion_tokens += part.completion_tokens
            total.texts += part.texts
    return totals[0], totals[1]


def overhead(runner: asyncio.Runner, texts: Sequence[str]) -> dict[str, Any]:
    ours = LiteLLMBackend(local_prefix_reuse=False)
    direct = llama_cpp.Llama(
        model_path=str(local_model_file(LOCAL_DEFAULT_MODEL)),
        n_ctx=_local.N_CTX,
        n_threads=os.cpu_count(),
        seed=_local.SEED,
        verbose=False,
    )
    run_ours(runner, ours, WARM_UP, max_tokens=8)
    run_direct(direct, WARM_UP, max_tokens=8)
    tasks = {
        "classification": ([prompt(text) for text in texts], 8),
        # A writing task, so that decoding (not the prompt) dominates the call.
        "generation": (
            [
                prompt(f"Write a long review of a film described as: {text}", instruction="You are a film critic.")
                for text in texts
            ],
            64,
        ),
    }
    result: dict[str, Any] = {"calls": len(texts)}
    for name, (prompts, max_tokens) in tasks.items():
        mine, theirs = alternate(
            lambda p, m=max_tokens: run_ours(runner, ours, p, max_tokens=m),
            lambda p, m=max_tokens: run_direct(direct, p, max_tokens=m),
            prompts,
        )
        result[name] = {
            "max_tokens": max_tokens,
            "ours_s_per_call": mine.seconds / len(prompts),
            "direct_s_per_call": theirs.seconds / len(prompts),
            "mean_completion_tokens": mine.completion_tokens / len(prompts),
            "ours_completion_tokens_per_s": mine.completion_tokens / mine.seconds,
            "direct_completion_tokens_per_s": theirs.completion_tokens / theirs.seconds,
            "time_ratio_ours_over_direct": mine.seconds / theirs.seconds,
            "same_outputs": mine.texts == theirs.texts,
        }
    return result


def prefix_reuse(runner: asyncio.Runner, prompts: Sequence[Messages], expected: Sequence[str]) -> dict[str, Any]:
    """Without reuse first, then with: each the way one config is evaluated over its rows."""
    timings = {}
    for reuse in (False, True):
        backend = LiteLLMBackend(local_prefix_reuse=reuse)
        run_ours(runner, backend, WARM_UP, max_tokens=4)  # loads the model; shares no prefix with the rows
        timings[reuse] = run_ours(runner, backend, prompts, max_tokens=4, constraint=LABELS)
    with_reuse, without = timings[True], timings[False]
    accuracy = sum(t == e for t, e in zip(with_reuse.texts, expected, strict=True)) / len(expected)
    return {
        "rows": len(prompts),
        "with_reuse_s": with_reuse.seconds,
        "without_reuse_s": without.seconds,
        "with_reuse_s_per_row": with_reuse.seconds / len(prompts),
        "without_reuse_s_per_row": without.seconds / len(prompts),
        "speedup": without.seconds / with_reuse.seconds,
        "same_outputs": with_reuse.texts == without.texts,
        "accuracy": accuracy,
    }


def table(results: dict[str, Any]) -> str:
    a, b, c = results["overhead"], results["prefix_reuse"], results["interleaved"]
    cls, gen = a["classification"], a["generation"]
    rows = [
        "| measure | ours (litellm path) | llama.cpp direct | ours / direct |",
        "|---|---|---|---|",
        f"| s per classification call (zero-shot, max 8 tokens, {a['calls']} calls) "
        f"| {cls['ours_s_per_call']:.3f} | {cls['direct_s_per_call']:.3f} "
        f"| {cls['time_ratio_ours_over_direct']:.2f}x time |",
        f"| generated tokens/s of call time (max 64 tokens, mean {gen['mean_completion_tokens']:.0f}) "
        f"| {gen['ours_completion_tokens_per_s']:.1f} | {gen['direct_completion_tokens_per_s']:.1f} "
        f"| {gen['time_ratio_ours_over_direct']:.2f}x time |",
        "",
        "| measure | with prefix reuse | without | speed-up |",
        "|---|---|---|---|",
        f"| 4-shot SST-2 prompt, {b['rows']} rows: s per row | {b['with_reuse_s_per_row']:.3f} "
        f"| {b['without_reuse_s_per_row']:.3f} | {b['speedup']:.2f}x |",
        f"| two 4-shot configs interleaved, {c['rows']} rows: s per row | {c['with_reuse_s_per_row']:.3f} "
        f"| {c['without_reuse_s_per_row']:.3f} | {c['speedup']:.2f}x |",
    ]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="dev rows for the prefix-reuse measurement")
    parser.add_argument("--overhead-calls", type=int, default=40, help="prompts for part (a)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 rows, 6 overhead calls")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows, calls = (10, 6) if args.quick else (args.rows, args.overhead_calls)
    train, dev = read_jsonl(args.datasets / "sst2-train.jsonl"), read_jsonl(args.datasets / "sst2-dev.jsonl")
    shots = few_shot(train)
    texts, expected = [r["input"]["text"] for r in dev[:rows]], [r["expected"] for r in dev[:rows]]
    interleaved_n = max(rows // 4, 4)
    interleaved = [
        prompt(text, instruction=instruction, shots=shots)
        for text in texts[: interleaved_n // 2]
        for instruction in (INSTRUCTION, OTHER_INSTRUCTION)
    ]
    with asyncio.Runner() as runner:  # cancels litellm's background task on close, unlike a bare loop
        results = {
            **header(script="bench_local_model.py", versions=("llama-cpp-python", "litellm")),
            "model": LOCAL_DEFAULT_MODEL,
            "n_threads": os.cpu_count(),
            "quick": args.quick,
            "overhead": overhead(runner, [r["input"]["text"] for r in dev[-calls:]]),
            "prefix_reuse": prefix_reuse(runner, [prompt(t, shots=shots) for t in texts], expected),
            "interleaved": prefix_reuse(
                runner, interleaved, [e for e in expected[: interleaved_n // 2] for _ in range(2)]
            ),
        }
        runner.run(LiteLLMBackend().aclose())
    write_result(results, args.out)  # stamps the load after: others' work slows both sides alike
    print(table(results))
    return results


if __name__ == "__main__":
    main()
