"""A tabular benchmark of the search space: many configurations, each scored case by case on validation, on a
confirmation slice of train and on test, so that search and selection rules can be compared offline over
thousands of simulated seeds instead of a handful of live runs (the way HPO work uses tabular benchmarks).

One table per (dataset, seed): ``optimize run`` with ``--sampler random`` over the default space plus the
data's instruction edits (format, definitions, role, summary), ``--trials`` draws, then every distinct
configuration it evaluated is also scored on the 30-case confirmation slice and on the test split, through the
same engine, cache and store. Written to ``experiments/results/search_tables/<dataset>_seed<seed>.json``.

    .venv/bin/python experiments/search_table.py --datasets sst2 trec subj --trials 60

``experiments/simulate_search.py`` replays search rules on the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import DATASETS, derived_spec  # noqa: E402
from make_results import RESULTS_DIR, header  # noqa: E402

TABLES_DIR = RESULTS_DIR / "search_tables"


def holdout_test(spec: dict[str, Any], folder: Path, rows: int) -> None:
    """Point the spec's test split at a file without the benchmark's test cases (the seeded sample of ``rows``
    that ``limit.test`` takes), so that rules chosen on a table are not chosen on the live benchmark's test."""
    import random

    data = spec["dataset"]
    lines = Path(data["test"]).read_text().splitlines(keepends=True)
    taken = set(random.Random(data.get("seed", 0)).sample(range(len(lines)), min(rows, len(lines))))
    rest = folder / "test-holdout.jsonl"
    rest.write_text("".join(line for i, line in enumerate(lines) if i not in taken))
    data["test"] = str(rest)


async def build_table(
    dataset: str,
    *,
    seed: int,
    trials: int,
    validation_rows: int,
    test_rows: int,
    confirm_rows: int,
    tmp: Path,
    holdout: bool = False,
) -> dict[str, Any]:
    import yaml
    from optuna.trial import TrialState

    from promptopt.cache import DiskResponseCache
    from promptopt.engine import Services
    from promptopt.models import LiteLLMBackend
    from promptopt.search import RunOptions, SearchRun
    from promptopt.search._prepare import open_run_study
    from promptopt.search._verdict import TestEvals
    from promptopt.search_spaces import SearchSpace
    from promptopt.spec import load_spec
    from promptopt.store import get_store
    from promptopt.validate import load_and_check

    folder = tmp / f"{dataset}-{seed}"
    spec = derived_spec(
        dataset,
        folder,
        validation_rows=validation_rows,
        test_rows=test_rows,
        trials=trials,
        propose=None,
        strategies=None,
        small=False,
        confirm=True,
        operators=True,
    )
    edited = yaml.safe_load(spec.read_text())
    edited["search"]["confirm"] = {"cases": confirm_rows, "shortlist": 3}
    if holdout:
        holdout_test(edited, folder, test_rows)
    spec.write_text(yaml.safe_dump(edited))
    loaded = load_spec(spec)
    dataset_obj = load_and_check(loaded)
    store = get_store(f"sqlite:///{folder}/store.db")
    backend = LiteLLMBackend()
    services = Services(backend=backend, cache=DiskResponseCache(folder / "cache"), records=store)
    options = RunOptions(
        sampler="random", seed=seed, start="designed", parallel=1, max_trials=trials, top_k=1, promote=False
    )
    t0 = time.perf_counter()
    try:
        search = SearchRun(loaded=loaded, dataset=dataset_obj, options=options, services=services)
        result = await search.run()
        run = store.get_run(result.run_id)
        space = SearchSpace.from_json(run.space)
        study = open_run_study(store, run.id, space, options)
        tests = TestEvals(loaded, search.dataset, search.services, run_id=run.id)
        configs = []
        for t in study.get_trials(states=(TrialState.COMPLETE,)):
            if "duplicate_of" in t.user_attrs:
                continue
            config = space.config(t.params)
            val = store.get_rows(t.user_attrs["experiment_id"])
            confirm = (await tests.confirm(config, t.number)).rows
            test = (await tests.verdict(config, t.number)).rows
            configs.append(
                {
                    "trial": t.number,
                    "params": t.params,
                    "description": config.describe(),
                    "instruction": config.instruction,
                    "config_hash": config.hash,
                    "designed": bool(t.user_attrs.get("designed")),
                    "validation": _per_case(val),
                    "confirm": _per_case(confirm),
                    "test": _per_case(test),
                }
            )
            print(f"  {dataset} trial {t.number}: {len(configs)} configurations", file=sys.stderr)
        return {
            "dataset": dataset,
            "seed": seed,
            "trials": trials,
            "test_cases": "held out: not the benchmark's test cases" if holdout else "the benchmark's test cases",
            "baseline_hash": space.config(space.baseline()).hash,
            "space": run.space,
            "configs": configs,
            "wall_s": time.perf_counter() - t0,
            "model_calls": store.run_usage(run.id)[0],
        }
    finally:
        await backend.aclose()
        store.dispose()


def _per_case(rows: Sequence[Any]) -> dict[str, float | None]:
    return {str(r.case_id): r.objective for r in rows}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--validation-rows", type=int, default=30)
    parser.add_argument("--test-rows", type=int, default=100)
    parser.add_argument("--confirm-rows", type=int, default=40, help="train cases carved as the confirmation slice")
    parser.add_argument(
        "--holdout-test",
        action="store_true",
        help="score test on cases other than the live benchmark's, so rules are not tuned on its test rows",
    )
    args = parser.parse_args(argv)
    TABLES_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="search-table-") as tmp:
        for dataset in args.datasets:
            table = asyncio.run(
                build_table(
                    dataset,
                    seed=args.seed,
                    trials=args.trials,
                    validation_rows=args.validation_rows,
                    test_rows=args.test_rows,
                    confirm_rows=args.confirm_rows,
                    tmp=Path(tmp),
                    holdout=args.holdout_test,
                )
            )
            out = TABLES_DIR / f"{dataset}_seed{args.seed}.json"
            out.write_text(
                json.dumps({**header(script="search_table.py"), "confirm_rows": args.confirm_rows, **table}, indent=1)
            )
            print(f"{out}: {len(table['configs'])} configurations, {table['wall_s']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
