"""`optimize schedule ...` and `optimize scheduler`: re-optimize prompts on fresh production logs, on a timer
and when enough new feedback arrived, from cron (`schedule tick`) or a daemon (`scheduler`)."""

from __future__ import annotations

import re
import signal
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
    print_json,
)
from promptopt.cli._logs import opened
from promptopt.errors import InputError

_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
WorkDirOpt = typer.Option(
    None,
    "--work-dir",
    help="Where datasets exported from logs and derived specs are written; default ./.optimize/schedules",
)
LeaseOpt = typer.Option(
    300.0,
    "--lease-s",
    min=1.0,
    help="Lease length; renewed every third of it while a job runs, taken over by another scheduler once it runs out.",
)


def parse_interval(text: str, option: str) -> float:
    """``90``, ``90s``, ``15m``, ``6h``, ``1d``, ``1w`` -> seconds."""
    found = _INTERVAL.match(text.strip())
    if not found or float(found.group(1)) <= 0:
        raise InputError(option, option.lstrip("-"), f"{text!r} is not an interval; e.g. 3600, 90s, 15m, 6h, 1d")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def _human(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _list_table(schedules: list[Any]) -> Table:
    table = Table(title=f"{len(schedules)} schedule(s)")
    for column in ("name", "prompt", "every", "min new feedback", "state", "last run", "last status", "spec"):
        table.add_column(column, overflow="fold")
    for s in schedules:
        state = "paused" if s.paused else (f"running ({s.lease_owner})" if s.lease_owner else "active")
        table.add_row(
            s.name,
            s.prompt,
            _human(s.every_s),
            str(s.min_new_feedback),
            state,
            _when(s.last_run_at),
            s.last_status or "",
            s.spec_path,
        )
    return table


def _history_table(name: str, runs: list[Any]) -> Table:
    table = Table(title=f"{name}: {len(runs)} run(s), newest first")
    for column in ("#", "started", "status", "by", "cases", "new feedback", "run", "promoted", "drift", "message"):
        table.add_column(column, overflow="fold")
    for r in runs:
        promoted = "" if r.promoted is None else ("yes" if r.promoted else "no")
        table.add_row(
            str(r.id),
            _when(r.started_at),
            r.status,
            r.owner,
            "" if r.cases is None else str(r.cases),
            "" if r.new_feedback is None else str(r.new_feedback),
            (r.run_id or "")[:8],
            promoted,
            "" if r.drift is None else f"{r.drift.fresh_score:.3f} < {r.drift.registered_test_score:.3f}",
            r.message or "",
        )
    return table


def _progress(event: Any) -> None:
    """One line on stderr per scheduler event (``promptopt.schedules.ScheduleEvent``)."""
    from promptopt import schedules as s
    from promptopt.cli._run import _progress as search_progress

    match event:
        case s.JobStarted(schedule=name, taken_over=taken_over, new_feedback=new_feedback):
            how = " (taking over a run whose scheduler died)" if taken_over else ""
            err_console.print(f"schedule {name}: started{how}, {new_feedback} new feedback", markup=False)
        case s.JobResumed(schedule=name, dataset_file=path):
            err_console.print(f"schedule {name}: continuing with {path}", markup=False)
        case s.WarmStarted(schedule=name, warm=warm):
            err_console.print(
                f"schedule {name}: run {warm.run_id[:8]}: trial 0 is the production version, "
                f"{warm.enqueued_previous} winner(s) of the previous run next",
                markup=False,
            )
        case s.DriftDetected(alert=alert):
            err_console.print(f"[bold yellow]{alert.message}[/]")
        case s.SearchProgress(event=inner):
            search_progress(inner)


def _print_report(report: Any) -> None:
    where = f", run {report.run_id[:8]}" if report.run_id else ""
    line = f"{report.schedule}: {report.status}{where}"
    if report.promotion:
        p = report.promotion
        line += f"; v{p['version']} {'promoted to' if p['promoted'] else 'not promoted to'} {p['label']!r}"
    if report.message:
        line += f": {report.message}"
    console.print(line, markup=False, soft_wrap=True)
    if report.drift is not None:
        console.print(f"[bold yellow]{report.drift.message}[/]", soft_wrap=True)


def _scheduler(the_store: Any, cache: str | None, no_cache: bool, work_dir: Path | None, lease_s: float) -> Any:
    from promptopt.cache import get_cache
    from promptopt.schedules import Scheduler

    return Scheduler(
        the_store, cache=get_cache(cache, enabled=not no_cache), work_dir=work_dir, lease_s=lease_s, on_event=_progress
    )


def register(app: typer.Typer) -> None:
    """Add the ``schedule`` command group and the ``scheduler`` daemon to ``app``."""
    schedule_app = typer.Typer(
        name="schedule",
        no_args_is_help=True,
        help="Scheduled re-optimization on fresh logs with feedback, gated promotion.",
    )
    app.add_typer(schedule_app, name="schedule")

    @schedule_app.command("add")
    @handle_errors
    def add(
        spec: Path = typer.Argument(..., help="The prompt's spec (task, scorers, search, budget, registry)."),
        name: str | None = typer.Option(None, "--name", help="Schedule name; default the spec's task.name."),
        every: str = typer.Option("1d", "--every", help="Interval between runs: 3600, 90s, 15m, 6h, 1d, 1w."),
        min_new_feedback: int = typer.Option(
            0, "--min-new-feedback", min=0, help="Run only once this many new feedback entries arrived."
        ),
        sampler: str = typer.Option("auto", help="auto (as optimize run), tpe, random, grid, guided or evolve."),
        seed: int = typer.Option(0, help="Seed of the sampler and the split."),
        top_k: int = typer.Option(2, "--top-k", min=1, help="Best candidates tested beside production."),
        max_trials: int | None = typer.Option(None, "--max-trials", min=1, help="Override budget.trials."),
        min_cases: int = typer.Option(8, "--min-cases", min=3, help="Skip a run with fewer labelled logs."),
        window: str | None = typer.Option(None, "--window", help="Only logs of this last period (e.g. 30d)."),
        warm_start: int = typer.Option(2, "--warm-start", min=0, help="Winners of the previous run evaluated first."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Add a schedule: re-optimize the spec's prompt on its fresh logs every interval."""
        from pydantic import ValidationError

        from promptopt.schedules import Schedules, ScheduleSettings
        from promptopt.spec import load_spec
        from promptopt.validate import check_templates

        loaded = load_spec(spec)
        check_templates(loaded)
        try:
            settings = ScheduleSettings(
                sampler=sampler,
                seed=seed,
                top_k=top_k,
                max_trials=max_trials,
                min_cases=min_cases,
                warm_start=warm_start,
                window_s=None if window is None else parse_interval(window, "--window"),
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InputError(
                f"--{str(err['loc'][0]).replace('_', '-')}",
                str(err["loc"][0]),
                err["msg"].removeprefix("Value error, "),
            ) from None
        every_s = parse_interval(every, "--every")
        with opened(store) as the_store:
            added = Schedules(the_store).add(
                name or loaded.spec.task.name,
                str(loaded.path),
                prompt=loaded.spec.task.name,
                every_s=every_s,
                min_new_feedback=min_new_feedback,
                settings=settings,
            )
        if as_json:
            print_json(added.model_dump(mode="json"))
            return
        console.print(
            f"schedule {added.name}: {added.prompt} every {_human(added.every_s)}"
            + (f" once {added.min_new_feedback} new feedback entries arrived" if added.min_new_feedback else "")
            + f", from {added.spec_path}",
            markup=False,
            soft_wrap=True,
        )

    @schedule_app.command("list")
    @handle_errors
    def list_(store: str | None = StoreOpt, as_json: bool = JsonOpt) -> None:
        """List the schedules."""
        from promptopt.schedules import Schedules

        with opened(store) as the_store:
            found = Schedules(the_store).list()
        if as_json:
            print_json([s.model_dump(mode="json") for s in found])
        else:
            console.print(_list_table(found))

    def _set_paused(name: str, store: str | None, paused: bool) -> None:
        from promptopt.schedules import Schedules

        with opened(store) as the_store:
            Schedules(the_store).set_paused(name, paused)
        console.print(f"schedule {name}: {'paused' if paused else 'resumed'}", markup=False)

    @schedule_app.command("pause")
    @handle_errors
    def pause(name: str = typer.Argument(..., help="Schedule name."), store: str | None = StoreOpt) -> None:
        """Pause a schedule (a run in progress finishes)."""
        _set_paused(name, store, True)

    @schedule_app.command("resume")
    @handle_errors
    def resume(name: str = typer.Argument(..., help="Schedule name."), store: str | None = StoreOpt) -> None:
        """Resume a paused schedule."""
        _set_paused(name, store, False)

    @schedule_app.command("remove")
    @handle_errors
    def remove(name: str = typer.Argument(..., help="Schedule name."), store: str | None = StoreOpt) -> None:
        """Remove a schedule and its history (runs, datasets and registry versions stay)."""
        from promptopt.schedules import Schedules

        with opened(store) as the_store:
            Schedules(the_store).remove(name)
        console.print(f"schedule {name}: removed", markup=False)

    @schedule_app.command("history")
    @handle_errors
    def history(
        name: str = typer.Argument(..., help="Schedule name."),
        limit: int = typer.Option(20, min=1, help="At most this many runs."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """The schedule's runs: status, data, promotion, drift alerts."""
        from promptopt.schedules import Schedules

        with opened(store) as the_store:
            runs = Schedules(the_store).history(name, limit=limit)
        if as_json:
            print_json([r.model_dump(mode="json") for r in runs])
        else:
            console.print(_history_table(name, runs))

    @schedule_app.command("tick")
    @handle_errors
    def tick(
        store: str | None = StoreOpt,
        cache: str | None = CacheOpt,
        no_cache: bool = NoCacheOpt,
        work_dir: Path | None = WorkDirOpt,
        lease_s: float = LeaseOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Run every due schedule once, then exit (for cron or CI); exit code 1 if a run failed."""
        with opened(store) as the_store:
            reports = _scheduler(the_store, cache, no_cache, work_dir, lease_s).tick()
        if as_json:
            print_json([r.model_dump(mode="json") for r in reports])
        else:
            for report in reports:
                _print_report(report)
            if not reports:
                console.print("no schedule is due", markup=False)
        if any(r.status == "failed" for r in reports):
            raise typer.Exit(1)

    @app.command("scheduler")
    @handle_errors
    def scheduler(
        poll_s: float = typer.Option(60.0, "--poll-s", min=0.1, help="Seconds between looks for due schedules."),
        store: str | None = StoreOpt,
        cache: str | None = CacheOpt,
        no_cache: bool = NoCacheOpt,
        work_dir: Path | None = WorkDirOpt,
        lease_s: float = LeaseOpt,
    ) -> None:
        """Run due schedules until stopped (SIGINT/SIGTERM); any number may run against one store."""
        with opened(store) as the_store:
            runner = _scheduler(the_store, cache, no_cache, work_dir, lease_s)
            runner.on_event = _progress_and_reports
            signal.signal(signal.SIGTERM, _interrupt)
            err_console.print(f"scheduler {runner.owner}: polling every {poll_s:g} s", markup=False)
            try:
                runner.run_forever(poll_s=poll_s)
            except KeyboardInterrupt:
                err_console.print(f"scheduler {runner.owner}: stopped", markup=False)
                raise typer.Exit(130) from None


def _progress_and_reports(event: Any) -> None:
    """The daemon's output: progress on stderr, and a line per finished job."""
    from promptopt.schedules import JobDone

    if isinstance(event, JobDone):
        _print_report(event.report)
    else:
        _progress(event)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # a job in progress gives its lease up, so another scheduler continues at once
