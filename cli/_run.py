"""`optimize run`: search, held-out verdict, leaderboard."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from promptopt.cli._common import (
    CacheOpt,
    JsonOpt,
    NoCacheOpt,
    StoreOpt,
    console,
    err_console,
    handle_errors,
    open_store,
    print_json,
)
from promptopt.stats import format_p


def run_json(result: Any) -> dict[str, Any]:
    """The documented ``--json`` shape of a run. ``validation_test_gap`` is the winner's validation minus test
    score; ``confirmation_score`` a shortlisted candidate's on the confirmation slice. A candidate's ``cost_usd``
    and ``mean_latency_s`` are what its validation eval paid (0 and null when every response was cached);
    ``cost_per_row_usd`` and ``latency_per_row_s`` are what its model call costs and takes per row when it really
    runs (the cost and latency objectives). ``instructions`` counts the instruction candidates by source, the
    evolve search's generations and the rejected proposals by reason."""

    def cand(c: Any) -> dict[str, Any]:
        return {
            "trial": c.trial,
            "config": c.config,
            "description": c.description,
            "validation_score": c.validation_score,
            "test_score": c.test_score,
            "confirmation_score": c.confirmation_score,
            "cost_usd": c.cost_usd,
            "mean_latency_s": c.mean_latency_s,
            "cost_per_row_usd": c.cost_per_row_usd,
            "latency_per_row_s": c.latency_per_row_s,
            "experiment_id": c.experiment_id,
            "test_experiment_id": c.test_experiment_id,
        }

    return {
        "run_id": result.run_id,
        "status": result.status,
        "stopped_by": result.stopped_by,
        "trials": result.trials,
        "failed_trials": result.failed_trials,
        "model_calls": result.model_calls,
        "cost_usd": result.cost_usd,
        "wall_s": round(result.wall_s, 2),
        "baseline": cand(result.baseline),
        "best": cand(result.best),
        "lift": result.lift,
        "lift_ci95": result.lift_ci95,
        "p_value": result.p_value,
        "validation_test_gap": result.validation_test_gap,
        "leaderboard": [cand(c) for c in result.leaderboard],
        "pareto": [cand(c) for c in result.pareto],
        "promotion": None if result.promotion is None else result.promotion.model_dump(mode="json"),
        "instructions": None if result.instructions is None else result.instructions.model_dump(mode="json"),
    }


def leaderboard_table(result: Any, limit: int = 15) -> Table:
    """The top of the leaderboard: per row, what a configuration's call costs and takes when it really runs
    (cached or not); "paid $", what its validation eval spent this run."""
    table = Table(
        title=f"run {result.run_id}: {result.trials} trials, {result.model_calls} model calls, "
        f"${result.cost_usd:.4f} paid, {result.wall_s:.0f} s"
    )
    for col in ("rank", "trial", "configuration", "validation", "test", "cost $/row", "latency s/row", "paid $"):
        table.add_column(col, justify="left" if col == "configuration" else "right", overflow="fold")
    front = {c.trial for c in result.pareto}
    for rank, c in enumerate(result.leaderboard[:limit], start=1):
        mark = (" (baseline)" if c.trial == result.baseline.trial else "") + (" (pareto)" if c.trial in front else "")
        table.add_row(
            str(rank),
            f"{c.trial}{mark}",
            c.description,
            _num(c.validation_score),
            _num(c.test_score),
            _num(c.cost_per_row_usd, ".6f"),
            _num(c.latency_per_row_s),
            f"{c.cost_usd:.4f}",
        )
    return table


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _num(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def _progress(event: Any) -> None:
    """One line on stderr per run event (``promptopt.search.RunEvent``)."""
    from promptopt import search as s

    match event:
        case s.TrialFinished(number=n, status=status, score=score, error=error, node=node):
            what = f"score {score:.3f}" if status is s.TrialStatus.COMPLETE else f"{status}: {error}"
            err_console.print(f"  trial {n:>3} {what}" + (f" on {node}" if node else ""))
        case s.RunStarted(run_id=run_id, resumed=resumed):
            err_console.print(f"run {run_id}" + (" (resumed)" if resumed else ""))
        case s.SpaceBuilt(dimensions=dims, proposals=proposals):
            err_console.print(
                f"search space: {', '.join(dims) or 'no dimension (baseline only)'}"
                + (f"; {len(proposals)} proposed instruction(s)" if proposals else "")
            )
        case s.FineTuneTrained(job=job, model=model, rows=rows, train_s=secs, reused=reused):
            how = "found again (already trained)" if reused else f"trained on {rows} train cases in {secs:.0f} s"
            err_console.print(f"fine-tune {job}: {model} {how}")
        case s.PrepassStarted():
            err_console.print("pre-pass: baseline on a train sample (bootstrapped demos, mistakes to ground proposals)")
        case s.InstructionsEvolved(generation=g, parent_trial=parent, children=children, rejected=rejected, prompt=p):
            of = f" of prompt {p!r}" if p else ""
            err_console.print(
                f"generation {g}{of}: {len(children)} instruction(s) from trial {parent}'s mistakes on train"
                + (f"; {len(rejected)} rejected ({'; '.join(rejected)})" if rejected else "")
            )
        case s.TestEvalStarted(trial=trial):
            err_console.print(f"held-out test split: trial {trial}")
        case s.PromotionDecided(decision=d):
            moved = "moved" if d.promoted else "stays where it was"
            err_console.print(f"registry: v{d.version} registered; label {d.label!r} {moved}: {d.reason}")
        case s.TrialsRecovered(trials=n):
            err_console.print(f"retrying {n} trial(s) interrupted by a crash")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def run(
        spec: Path = typer.Argument(..., help="Spec YAML file with search and budget sections."),
        sampler: str = typer.Option(
            "auto",
            help="auto (default: guided with the region start when search.constrained offers calibrated label "
            "scores, else tpe), tpe, random, grid (exhaustive), guided (4 random trials after the baseline, then "
            "always the untried configuration an additive model of the factors scores best), or evolve "
            "(designed start, one factor at a time from the best, instructions written from the best's "
            "mistakes on train during the run).",
        ),
        seed: int = typer.Option(0, help="Seed of the sampler and of few-shot draws."),
        start: str = typer.Option(
            "baseline",
            help="baseline: the spec first, then the sampler; designed: "
            "also the spec's instruction with the most examples (constrained where "
            "searched) before the sampler's start-up trials; region (with --sampler guided): every trial "
            "inside the region a practitioner searches first (constrained output, the most examples) until "
            "it is used up; screen (with --sampler guided): each designed value alone and all together "
            "(constrained output or not x no examples or the most), then the model with no random start-up.",
        ),
        parallel: int = typer.Option(1, min=1, max=256, help="Trials evaluated at once."),
        executor: str = typer.Option("ray", help="ray (local Ray, or --ray-address) or local (in-process)."),
        ray_address: str | None = typer.Option(None, help="Join an existing Ray cluster."),
        objective: str = typer.Option("score", help="score, or score,cost / score,latency for a Pareto front."),
        max_trials: int | None = typer.Option(None, help="Override budget.trials."),
        max_calls: int | None = typer.Option(None, help="Override budget.model_calls."),
        max_usd: float | None = typer.Option(None, help="Override budget.usd."),
        max_wall_s: float | None = typer.Option(None, help="Override budget.wall_s."),
        top_k: int = typer.Option(2, min=1, help="Best candidates (the winner first) tested beside the baseline."),
        resume: str | None = typer.Option(None, help="Continue this run id."),
        promote: bool = typer.Option(
            True, "--promote/--no-promote", help="Register the winner and move the label if it beats the incumbent."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print estimated calls and cost as JSON."),
        store: str | None = StoreOpt,
        cache: str | None = CacheOpt,
        no_cache: bool = NoCacheOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Search prompt configurations, evaluate every candidate as a full eval, give a held-out verdict."""
        from promptopt.cache import get_cache
        from promptopt.engine import Services
        from promptopt.errors import InputError
        from promptopt.models import get_backend
        from promptopt.search import GUIDED_STARTS, SAMPLERS, STARTS, LocalExecutor, RunOptions, SearchRun, estimate_run
        from promptopt.spec import load_spec
        from promptopt.validate import load_and_check

        objectives = tuple(o.strip() for o in objective.split(","))
        if objectives[0] != "score" or not set(objectives) <= {"score", "cost", "latency"} or len(objectives) > 2:
            raise InputError("--objective", "objective", "expected score, score,cost or score,latency")
        if sampler not in SAMPLERS:
            raise InputError("--sampler", "sampler", f"expected one of {SAMPLERS}, got {sampler!r}")
        if start not in STARTS:
            raise InputError("--start", "start", f"expected one of {', '.join(STARTS)}, got {start!r}")
        if start in GUIDED_STARTS and sampler not in ("guided", "auto"):
            raise InputError("--start", "start", f"{start} needs --sampler guided, got --sampler {sampler}")
        if executor not in ("ray", "local"):
            raise InputError("--executor", "executor", f"expected ray or local, got {executor!r}")
        loaded = load_spec(spec)
        dataset = load_and_check(loaded)
        options = RunOptions(
            sampler=sampler,
            seed=seed,
            start=start,
            parallel=parallel,
            objectives=objectives,
            top_k=top_k,
            max_trials=max_trials,
            max_calls=max_calls,
            max_usd=max_usd,
            max_wall_s=max_wall_s,
            promote=promote,
            who=os.environ.get("USER") or "optimize run",
        )
        backend = get_backend()
        if dry_run:
            print_json(
                estimate_run(
                    loaded,
                    dataset,
                    trials=max_trials or loaded.spec.budget.effective_trials,
                    top_k=top_k,
                    backend=backend,
                    seed=seed,
                )
            )
            return
        the_store = open_store(store)
        the_cache = get_cache(cache, enabled=not no_cache)
        factory: Any = LocalExecutor
        trainer = None
        if executor == "ray":
            from promptopt.workers import ray_executor_factory, ray_lora_trainer

            trainer = ray_lora_trainer(ray_address)  # LoRA fine-tunes train on a worker, not in this process

            factory = ray_executor_factory(
                loaded=loaded,
                cache=the_cache,
                store_url=the_store.url,
                address=ray_address,
                concurrency=loaded.spec.eval.concurrency,
            )
        services = Services(backend=backend, cache=the_cache, records=the_store)
        search = SearchRun(
            loaded=loaded,
            dataset=dataset,
            options=options,
            services=services,
            executor_factory=factory,
            on_event=_progress,
            trainer=trainer,
        )  # progress goes to stderr, so --json stdout stays clean
        result = asyncio.run(search.run(resume_id=resume))
        if as_json:
            print_json(run_json(result))
            return
        console.print(leaderboard_table(result))
        b, w = result.baseline, result.best
        console.print(
            f"baseline (trial {b.trial}): validation {_score(b.validation_score)}, test {_score(b.test_score)}"
        )
        console.print(
            f"best     (trial {w.trial}): validation {_score(w.validation_score)}, test {_score(w.test_score)}"
        )
        if result.lift is not None and result.lift_ci95 is not None and result.p_value is not None:
            lo, hi = result.lift_ci95
            console.print(
                f"lift on the test split: {result.lift:+.3f} (95% CI {lo:+.3f}..{hi:+.3f}), {format_p(result.p_value)}"
            )
        if result.promotion:
            p = result.promotion
            state = "promoted to" if p.promoted else "registered; not promoted to"
            console.print(f"registry: {loaded.spec.task.name} v{p.version} {state} {p.label!r}: {p.reason}")
