"""`optimize validate`, `optimize eval`, `optimize schema`, `optimize compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
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
from promptopt.engine import EvalResult, EvalSummary


def summary_json(result_id: str, summary: EvalSummary, status: str = "finished") -> dict[str, Any]:
    """The documented ``--json`` shape of an eval."""
    return {
        "experiment_id": result_id,
        "status": status,
        "rows": summary.rows,
        "scores": summary.scores,
        "objective": summary.objective,
        "model_calls": summary.model_calls,
        "cache_hits": summary.cache_hits,
        "errors": summary.errors,
        "tokens": {"task": summary.task_tokens, "scorer": summary.scorer_tokens},
        "cost_usd": summary.cost_usd,
        "cost": {"task": summary.task_cost_usd, "scorer": summary.scorer_cost_usd},
        "mean_latency_s": summary.mean_latency_s,
        "wall_s": round(summary.wall_s, 3),
    }


def _summary_table(result: EvalResult) -> Table:
    s = result.summary
    table = Table(title=f"experiment {result.experiment_id} ({result.split}, {s.rows} rows)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in s.scores.items():
        table.add_row(f"score: {name}", "n/a" if value is None else f"{value:.4f}")
    table.add_row("objective", "n/a" if s.objective is None else f"{s.objective:.4f}")
    table.add_row("errors", str(s.errors))
    table.add_row("model calls", str(s.model_calls))
    table.add_row("cache hits", str(s.cache_hits))
    table.add_row("tokens (task / scorer)", f"{s.task_tokens} / {s.scorer_tokens}")
    table.add_row("cost USD (task / scorer)", f"{s.task_cost_usd:.4f} / {s.scorer_cost_usd:.4f}")
    table.add_row("wall s", f"{s.wall_s:.2f}")
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _incumbent(against: str, loaded: Any, dataset: Any, split: str, store: Any, cache: Any) -> EvalResult:
    """The result to compare with: a stored experiment, or the registry version holding label ``against``
    evaluated now on the same split (cached calls cost nothing)."""
    import asyncio
    import re

    from promptopt.engine import Services, evaluate_config
    from promptopt.models import get_backend

    if re.fullmatch(r"[0-9a-f]{6,32}", against):
        stored: EvalResult = store.get_result(against)
        return stored
    from promptopt.registry import Registry

    version = Registry(store).get(loaded.spec.task.name, label=against)
    err_console.print(f"incumbent: {loaded.spec.task.name} v{version.version} ({against}) on {split}")
    services = Services(backend=get_backend(), cache=cache, records=store)
    from promptopt.config import base_candidate, on_code_of

    config = on_code_of(version.config, base_candidate(loaded))  # the registered prompts, today's function
    return asyncio.run(evaluate_config(loaded, dataset, config, split=split, services=services))


def _gate(candidate: EvalResult, incumbent: EvalResult, threshold: float, as_json: bool) -> None:
    from promptopt.reports import gate

    outcome = gate(candidate, incumbent, threshold=threshold)
    if as_json:
        print_json(
            {
                "passed": outcome.passed,
                "candidate": summary_json(candidate.experiment_id, candidate.summary),
                "incumbent_experiment_id": incumbent.experiment_id,
                "comparison": outcome.comparison.model_dump(mode="json"),
            }
        )
    else:
        console.print(outcome.markdown, markup=False, highlight=False)
    if not outcome.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def validate(spec: Path = typer.Argument(..., help="Spec YAML file.")) -> None:
        """Check a spec and its data without calling a model."""
        from promptopt.spec import load_spec
        from promptopt.validate import check_fine_tune, load_and_check

        loaded = load_spec(spec)
        dataset = load_and_check(loaded)
        check_fine_tune(loaded)
        console.print(
            f"[green]ok[/] {spec}: task {loaded.spec.task.name!r}, model {loaded.spec.task.model}, "
            f"train/validation/test = {len(dataset.train)}/{len(dataset.validation)}/"
            f"{len(dataset.test)} cases, {len(loaded.spec.scorers)} scorer(s)"
        )

    @app.command()
    def schema() -> None:
        """Print the JSON Schema of a spec (for editor autocompletion)."""
        from promptopt.spec import Spec

        print_json(Spec.model_json_schema(by_alias=True))

    @app.command("eval")
    @handle_errors
    def eval_(
        spec: Path = typer.Argument(..., help="Spec YAML file."),
        split: str = typer.Option("validation", help="train, validation or test."),
        store: str | None = StoreOpt,
        cache: str | None = CacheOpt,
        no_cache: bool = NoCacheOpt,
        against: str | None = typer.Option(
            None,
            help="CI gate: compare with a registry label of task.name (e.g. production) or an "
            "experiment id on the same rows; exit 1 when the prompt regresses beyond --threshold.",
        ),
        threshold: float = typer.Option(0.0, min=0, help="Allowed drop of the mean objective."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Run the spec's prompt as written over one split as a full eval and record it."""
        from promptopt.cache import get_cache
        from promptopt.engine import Services, evaluate_spec
        from promptopt.errors import InputError
        from promptopt.models import get_backend
        from promptopt.spec import load_spec
        from promptopt.validate import load_and_check

        if split not in ("train", "validation", "test"):
            raise InputError("--split", "split", f"expected train, validation or test, got {split!r}")
        loaded = load_spec(spec)
        dataset = load_and_check(loaded)
        the_store = open_store(store)
        the_cache = get_cache(cache, enabled=not no_cache)
        total = len(dataset.split(split)) * loaded.spec.eval.repeats
        with Progress(
            TextColumn("[bold]eval[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as progress:
            bar = progress.add_task(loaded.spec.task.name, total=total)
            services = Services(backend=get_backend(), cache=the_cache, records=the_store)
            result = evaluate_spec(
                loaded, dataset, split=split, services=services, on_row=lambda _row: progress.advance(bar)
            )
        if against is not None:
            incumbent = _incumbent(against, loaded, dataset, split, the_store, the_cache)
            the_cache.close()
            _gate(result, incumbent, threshold, as_json)
            return
        the_cache.close()
        if as_json:
            print_json(summary_json(result.experiment_id, result.summary, result.status))
        else:
            console.print(_summary_table(result))

    @app.command()
    @handle_errors
    def compare(
        experiment_a: str = typer.Argument(..., help="Baseline experiment id (or unique prefix)."),
        experiment_b: str = typer.Argument(..., help="Candidate experiment id (or unique prefix)."),
        store: str | None = StoreOpt,
        show: int = typer.Option(10, help="Cases to list each way."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Per scorer: mean difference of B against A, and the cases B improved and regressed."""
        from promptopt.compare import compare as do_compare

        the_store = open_store(store)
        cmp = do_compare(the_store.get_result(experiment_a), the_store.get_result(experiment_b))
        if as_json:
            print_json(cmp.model_dump(mode="json"))
            return
        table = Table(title=f"{cmp.experiment_b} vs {cmp.experiment_a} on {cmp.paired_cases} paired cases")
        for col in ("scorer", "mean A", "mean B", "delta", "improved", "regressed", "unchanged"):
            table.add_column(col, justify="left" if col == "scorer" else "right")
        for d in cmp.scorers:
            table.add_row(
                d.scorer,
                _fmt(d.mean_a),
                _fmt(d.mean_b),
                _fmt(d.delta),
                str(d.improved),
                str(d.regressed),
                str(d.unchanged),
            )
        console.print(table)
        if cmp.objective_delta is not None and cmp.objective_ci95 is not None:
            lo, hi = cmp.objective_ci95
            console.print(
                f"objective delta {cmp.objective_delta:+.4f} (95% CI {lo:+.4f}..{hi:+.4f}, "
                f"paired permutation p={cmp.p_value:.4f}); improved {len(cmp.improved)}, "
                f"regressed {len(cmp.regressed)}; errors A/B {cmp.errors_a}/{cmp.errors_b}"
            )
        for title, cases in (("regressed", cmp.regressed), ("improved", cmp.improved)):
            if not cases:
                continue
            t = Table(title=f"{title} cases (first {min(show, len(cases))} of {len(cases)})")
            for col in ("case", "input", "expected", "output A", "output B", "A", "B"):
                t.add_column(col, overflow="fold")
            for ch in cases[:show]:
                t.add_row(
                    ch.case_id[:10],
                    json.dumps(ch.input, ensure_ascii=False)[:80],
                    str(ch.expected),
                    (ch.output_a or "")[:40],
                    (ch.output_b or "")[:40],
                    f"{ch.score_a:.2f}",
                    f"{ch.score_b:.2f}",
                )
            console.print(t)
