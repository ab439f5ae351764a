"""Fine-tuned candidates against prompt-only ones, on the embedded SmolLM2-135M (issue 14's table).

Per dataset, one ``optimize run`` (the guided sampler, the default space of
``experiments/<dataset>/spec.yaml`` plus one ``search.fine_tune`` job: a LoRA trained on CPU from train rows
rendered through the spec's prompt), then on the test split: the spec as written, the best prompt-only
candidate (fine_tune = none), the fine-tune with the spec's own prompt, the best fine-tuned candidate (the
fine-tune with the prompt the search found for it) and the run's winner. The best of each kind is the one
with the best validation score, as the run picks its winner. Validation is the
run's 30 rows, test 100; every score is a full eval through the same engine and cache. Training time is the
job's, measured (adapters go to a fresh folder: nothing is found from an earlier run).

    .venv/bin/python experiments/bench_finetune.py --datasets sst2 trec

Writes ``experiments/results/finetune.json`` (with the Markdown table RESULTS.md shows).
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import derived_spec  # noqa: E402
from make_results import RESULTS_DIR, header, write_result  # noqa: E402

from promptopt.models import ADAPTERS_ENV  # noqa: E402

JOB = {"name": "lora", "epochs": 2, "rank": 8, "alpha": 16, "learning_rate": 2e-3, "max_rows": 200}


async def measure(dataset: str, *, trials: int, seed: int, tmp: Path) -> dict[str, Any]:
    from optuna.trial import TrialState

    from promptopt.cache import DiskResponseCache
    from promptopt.engine import Services, evaluate_config
    from promptopt.models import LiteLLMBackend
    from promptopt.search import RunOptions, SearchRun
    from promptopt.search._prepare import open_run_study
    from promptopt.search_spaces import SearchSpace
    from promptopt.spec import load_spec
    from promptopt.store import get_store
    from promptopt.validate import load_and_check

    folder = tmp / dataset
    spec = derived_spec(
        dataset, folder, validation_rows=30, test_rows=100, trials=trials, propose=None, strategies=None, small=False
    )
    edited = yaml.safe_load(spec.read_text())
    edited["search"]["fine_tune"] = {"jobs": [JOB]}
    spec.write_text(yaml.safe_dump(edited))
    loaded = load_spec(spec)
    data = load_and_check(loaded)
    store = get_store(f"sqlite:///{folder}/store.db")
    backend = LiteLLMBackend()
    services = Services(backend=backend, cache=DiskResponseCache(folder / "cache"), records=store)
    options = RunOptions(sampler="guided", seed=seed, parallel=1, max_trials=trials, top_k=1, promote=False)
    t0 = time.perf_counter()
    try:
        result = await SearchRun(loaded=loaded, dataset=data, options=options, services=services).run()
        run = store.get_run(result.run_id)
        space = SearchSpace.from_json(run.space)
        [dim] = [d for d in run.space["dimensions"] if d["kind"] == "fine_tune"]
        study = open_run_study(store, run.id, space, options)
        done = [
            t
            for t in study.get_trials(states=(TrialState.COMPLETE,))
            if "duplicate_of" not in t.user_attrs and t.values
        ]
        prompt_only = [t for t in done if t.params.get("fine_tune", "none") == "none"]
        tuned = [t for t in done if t.params.get("fine_tune", "none") != "none"]

        async def score(config: Any, split: str) -> float | None:
            return (await evaluate_config(loaded, data, config, split=split, services=services)).summary.objective

        async def scored(params: dict[str, Any], label: str, validation: float | None = None) -> dict[str, Any]:
            config = space.config(params)
            if validation is None:
                validation = await score(config, "validation")
            test = await score(config, "test")
            return {"candidate": label, "description": config.describe(), "validation": validation, "test": test}

        base = space.baseline()
        rows = [await scored(base, "spec as written")]
        best_prompt = max(prompt_only, key=lambda t: (t.values[0], -t.number))
        rows.append(await scored(best_prompt.params, "best prompt-only (no fine-tune)", best_prompt.values[0]))
        rows.append(await scored({**base, "fine_tune": "lora"}, "fine-tune, spec's prompt"))
        if tuned:
            best_tuned = max(tuned, key=lambda t: (t.values[0], -t.number))
            rows.append(await scored(best_tuned.params, "fine-tune + best prompt for it", best_tuned.values[0]))
        winner = result.best
        rows.append(
            {
                "candidate": "run's winner",
                "description": winner.description,
                "validation": winner.validation_score,
                "test": winner.test_score,
            }
        )
        return {
            "dataset": dataset,
            "seed": seed,
            "trials": len(done),
            "fine_tuned_trials": len(tuned),
            "winner_is_fine_tuned": "+ft-" in winner.config.get("model", ""),
            "job": JOB,
            "lineage": dim["lineage"]["lora"],
            "model_calls": store.run_usage(run.id)[0],
            "wall_s": round(time.perf_counter() - t0, 1),
            "rows": rows,
        }
    finally:
        await backend.aclose()
        store.dispose()


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "One `optimize run` per dataset (guided sampler, seed 0) over the default space plus "
        f"one fine-tune job (LoRA rank {JOB['rank']}, alpha {JOB['alpha']}, {JOB['epochs']} epochs, lr "
        f"{JOB['learning_rate']}, up to {JOB['max_rows']} train rows rendered through the spec's prompt); "
        "validation 30 rows, test 100 rows, the embedded SmolLM2-135M on CPU.",
        "",
        "| dataset | candidate | validation | test | configuration |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for row in r["rows"]:
            v = "n/a" if row["validation"] is None else f"{row['validation']:.3f}"
            t = "n/a" if row["test"] is None else f"{row['test']:.2f}"
            lines.append(f"| {r['dataset']} | {row['candidate']} | {v} | {t} | {row['description'][:90]} |")
    lines += ["", "| dataset | trials (fine-tuned) | run's model calls | training rows | training s | run wall s |"]
    lines += ["|---|---|---|---|---|---|"]
    for r in results:
        lin = r["lineage"]
        lines.append(
            f"| {r['dataset']} | {r['trials']} ({r['fine_tuned_trials']}) | {r['model_calls']} | {lin['rows']} | "
            f"{lin['train_s']:.0f} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["sst2", "trec"])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=JOB["max_rows"], help="training rows of the job")
    parser.add_argument("--epochs", type=int, default=JOB["epochs"])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "finetune.json")
    args = parser.parse_args(argv)
    JOB.update(max_rows=args.max_rows, epochs=args.epochs)
    results: dict[str, Any] = {**header(script="bench_finetune.py", versions=("torch", "peft")), "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as tmp:
        os.environ[ADAPTERS_ENV] = str(Path(tmp) / "adapters")  # trained here, never found from an earlier run
        for dataset in args.datasets:
            out = asyncio.run(measure(dataset, trials=args.trials, seed=args.seed, tmp=Path(tmp)))
            results["runs"].append(out)
            results["markdown"] = markdown(results["runs"])
            write_result(results, args.out)  # partial results after every dataset
            print(json.dumps(out, indent=1), file=sys.stderr)
    print(results["markdown"])


if __name__ == "__main__":
    main()
