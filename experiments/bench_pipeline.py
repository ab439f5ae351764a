"""A two-prompt code task searched jointly against searching only its last prompt (issue 17's example).

``experiments/pipeline/spec.yaml``: SST-2 through ``summarize`` then ``classify`` (the function in
``experiments/pipeline/sentiment_pipeline.py``), on the embedded SmolLM2-135M. Per seed, two runs at the same
trial budget and sampler: **joint** (every prompt's dimensions: instruction edits, demos bootstrapped from the
traces of right rows, the classifier's output constraint) and **last prompt only** (``search.prompts:
[classify]``; the summarizer stays as written). Each run's verdict scores the spec as written and its winner
on the same test rows (paired bootstrap CI and permutation p-value of the lift); the joint winner is also
compared with the last-prompt winner, paired on those rows. Validation 30 rows, test 100.

    .venv/bin/python experiments/bench_pipeline.py --seeds 0 1
    .venv/bin/python experiments/bench_pipeline.py --from-runs a.json b.json   # merge sittings

Runs share one response cache (as a user's runs would): a call both arms make is paid once, so the last-prompt
arm, which keeps the summarizer as written, pays fewer calls for the same number of full evals.

Writes ``experiments/results/pipeline.json`` (with the Markdown table RESULTS.md shows), after every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_results import RESULTS_DIR, header, write_result  # noqa: E402

SPEC_DIR = Path(__file__).resolve().parent / "pipeline"
ARMS = {"joint": None, "last prompt only": ["classify"]}


def write_spec(folder: Path, *, seed: int, trials: int, prompts: list[str] | None) -> Path:
    """The example's spec and function in ``folder`` (data paths made absolute), with the arm's prompts."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPEC_DIR / "sentiment_pipeline.py", folder / "sentiment_pipeline.py")
    data = yaml.safe_load((SPEC_DIR / "spec.yaml").read_text())
    for split in ("train", "validation", "test"):
        data["dataset"][split] = str((SPEC_DIR / data["dataset"][split]).resolve())
    data["dataset"]["seed"] = seed
    data["budget"]["trials"] = trials
    if prompts:
        data["search"]["prompts"] = prompts
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


async def measure(arm: str, *, seed: int, trials: int, tmp: Path) -> dict[str, Any]:
    from promptopt.cache import DiskResponseCache
    from promptopt.engine import Services
    from promptopt.models import LiteLLMBackend
    from promptopt.search import RunOptions, SearchRun
    from promptopt.spec import load_spec
    from promptopt.store import get_store
    from promptopt.validate import load_and_check

    folder = tmp / f"{arm.replace(' ', '-')}-{seed}"
    loaded = load_spec(write_spec(folder, seed=seed, trials=trials, prompts=ARMS[arm]))
    data = load_and_check(loaded)
    store = get_store(f"sqlite:///{folder}/store.db")
    backend = LiteLLMBackend()
    # One cache for every run: a configuration both arms try (the baseline) is paid once, as a user's would be.
    services = Services(backend=backend, cache=DiskResponseCache(tmp / "cache"), records=store)
    options = RunOptions(sampler="random", seed=seed, parallel=1, max_trials=trials, top_k=1, promote=False)
    t0 = time.perf_counter()
    try:
        result = await SearchRun(loaded=loaded, dataset=data, options=options, services=services).run()
        baseline = result.baseline
        return {
            "arm": arm,
            "seed": seed,
            "trials": len(result.leaderboard),
            "model_calls": store.run_usage(result.run_id)[0],
            "wall_s": round(time.perf_counter() - t0, 1),
            "baseline_validation": baseline.validation_score,
            "baseline_test": baseline.test_score,
            "winner_validation": result.best.validation_score,
            "winner_test": result.best.test_score,
            "winner": result.best.description,
            "winner_config": result.best.config,
            "lift": {"mean": result.lift, "ci95": result.lift_ci95, "p_value": result.p_value},
            "test_rows": {
                "baseline": _by_case(store, baseline.test_experiment_id),
                "winner": _by_case(store, result.best.test_experiment_id),
            },
        }
    finally:
        await backend.aclose()
        store.dispose()


def _by_case(store: Any, experiment_id: str | None) -> dict[str, float]:
    return {} if experiment_id is None else store.get_result(experiment_id).objective_by_case()


def compare(runs: list[dict[str, Any]], seed: int) -> dict[str, Any] | None:
    """The joint winner against the last-prompt winner on the same test rows (paired permutation test)."""
    from promptopt.stats import paired_bootstrap_ci, paired_permutation_p

    by_arm = {r["arm"]: r for r in runs if r["seed"] == seed}
    if set(by_arm) != set(ARMS):
        return None
    joint, last = by_arm["joint"]["test_rows"]["winner"], by_arm["last prompt only"]["test_rows"]["winner"]
    cases = sorted(set(joint) & set(last))
    a, b = [last[c] for c in cases], [joint[c] for c in cases]
    low, high = paired_bootstrap_ci(a, b, seed=seed)
    return {
        "seed": seed,
        "rows": len(cases),
        "joint_minus_last": sum(b) / len(b) - sum(a) / len(a),
        "ci": [low, high],
        "p_value": paired_permutation_p(a, b, seed=seed),
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Joint against last-prompt winners over every (seed, test case) pair of the seeds both arms ran."""
    from promptopt.stats import paired_bootstrap_ci, paired_permutation_p

    a: list[float] = []
    b: list[float] = []
    seeds = sorted({r["seed"] for r in runs})
    used = []
    for seed in seeds:
        by_arm = {r["arm"]: r for r in runs if r["seed"] == seed}
        if set(by_arm) != set(ARMS):
            continue
        joint, last = by_arm["joint"]["test_rows"]["winner"], by_arm["last prompt only"]["test_rows"]["winner"]
        cases = sorted(set(joint) & set(last))
        a += [last[c] for c in cases]
        b += [joint[c] for c in cases]
        used.append(seed)
    if not a:
        return None
    low, high = paired_bootstrap_ci(a, b, seed=0)
    return {
        "seeds": used,
        "pairs": len(a),
        "joint_minus_last": sum(b) / len(b) - sum(a) / len(a),
        "ci": [low, high],
        "p_value": paired_permutation_p(a, b, seed=0),
    }


def _mean_test(runs: list[dict[str, Any]], arm: str) -> float:
    scores = [r["winner_test"] for r in runs if r["arm"] == arm]
    return sum(scores) / len(scores)


def _pairs(runs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    by = {(r["seed"], r["arm"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    return [
        (by[(s, "joint")], by[(s, "last prompt only")])
        for s in seeds
        if (s, "joint") in by and (s, "last prompt only") in by
    ]


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "`experiments/pipeline/spec.yaml`: SST-2 through two prompts (`summarize`, then `classify` with the "
        "summary beside the review), embedded SmolLM2-135M, random sampler, the same trial budget per arm; "
        "validation 30 rows, test 100 rows. *Joint* searches both prompts; *last prompt only* sets "
        "`search.prompts: [classify]`. Lift = winner minus the spec as written on test (paired bootstrap 95% CI, "
        "permutation p).",
        "",
        "| arm | seed | trials | calls | spec as written (test) | winner (val / test) | lift [95% CI] | p | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        lift = r["lift"]
        low, high = lift["ci95"] or (float("nan"), float("nan"))
        ci = f"{_num(lift['mean'], '+.3f')} [{low:+.3f}, {high:+.3f}]"
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['trials']} | {r['model_calls']} | {r['baseline_test']:.2f} | "
            f"{r['winner_validation']:.3f} / {r['winner_test']:.2f} | {ci} | {_num(lift['p_value'], '.4f')} | "
            f"{r['wall_s']:.0f} |"
        )
    if results.get("comparisons"):
        lines += ["", "| seed | joint winner minus last-prompt winner (test) | 95% CI | p |", "|---|---|---|---|"]
        for c in results["comparisons"]:
            low, high = c["ci"]
            lines.append(
                f"| {c['seed']} | {c['joint_minus_last']:+.3f} | [{low:+.3f}, {high:+.3f}] | {c['p_value']:.4f} |"
            )
    if results.get("pooled"):
        p = results["pooled"]
        low, high = p["ci"]
        lines += [
            "",
            f"Over seeds {p['seeds']} ({p['pairs']} paired test cases): joint minus last prompt only "
            f"**{p['joint_minus_last']:+.3f}** [{low:+.3f}, {high:+.3f}], permutation p = {p['p_value']:.4f} "
            "(cases pooled over seeds; per seed the sign is what to read: "
            f"{sum(c['joint_minus_last'] > 0 for c in results['comparisons'])} of "
            f"{len(results['comparisons'])} seeds favour joint).",
            "",
            "Where it loses, measured: at the same 8 full evals the joint arm paid "
            + ", ".join(f"{j['model_calls']} vs {l_['model_calls']}" for j, l_ in _pairs(results["runs"]))
            + " model calls (the last-prompt arm's unchanged summarizer calls came from the shared cache), and "
            f"the joint winners' mean test score, {_mean_test(results['runs'], 'joint'):.3f}, is below the "
            "one-prompt SST-2 task searched at a similar budget (table 2, 100 test rows per seed: random search "
            "0.680): on a 135M model the summary step adds noise that the classifier, which also reads the "
            "review, has to overcome; the pipeline is an example of joint search, not a better SST-2 classifier.",
        ]
    lines += ["", "Winners:", ""]
    lines += [f"- {r['arm']}, seed {r['seed']}: {r['winner']}" for r in results["runs"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "pipeline.json")
    parser.add_argument("--from-runs", nargs="+", type=Path, help="merge the runs of earlier results files")
    args = parser.parse_args(argv)
    if args.from_runs:
        merge(args.from_runs, args.out)
        return
    results: dict[str, Any] = {**header(script="bench_pipeline.py"), "runs": [], "comparisons": []}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for seed in args.seeds:
            for arm in args.arms:
                out = asyncio.run(measure(arm, seed=seed, trials=args.trials, tmp=Path(tmp)))
                results["runs"].append(out)
                results["comparisons"] = [c for s in args.seeds if (c := compare(results["runs"], s))]
                results["pooled"] = pooled(results["runs"])
                results["markdown"] = markdown(results)
                write_result(results, args.out)  # partial results after every run
                print(json.dumps({k: v for k, v in out.items() if k != "test_rows"}, indent=1), file=sys.stderr)
    print(results["markdown"])


def merge(files: list[Path], out: Path) -> None:
    """One results file from several sittings: their runs, comparisons recomputed, each sitting's header kept."""
    sittings = [json.loads(f.read_text()) for f in files]
    runs = [r for s in sittings for r in s["runs"]]
    seeds = sorted({r["seed"] for r in runs})
    results = {
        **{k: v for k, v in sittings[0].items() if k not in ("runs", "comparisons", "pooled", "markdown")},
        "load_average_1min": None,  # summarised from sittings, each with its own load
        "sittings": [{k: s.get(k) for k in ("date", "commit", "load_average_1min")} for s in sittings],
        "runs": runs,
        "comparisons": [c for seed in seeds if (c := compare(runs, seed))],
        "pooled": pooled(runs),
    }
    results["markdown"] = markdown(results)
    write_result(results, out)
    print(results["markdown"])


if __name__ == "__main__":
    main()
