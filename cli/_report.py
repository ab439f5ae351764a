"""`optimize report RUN_ID` and `optimize leaderboard PROMPT_NAME`."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from promptopt.cli._common import JsonOpt, StoreOpt, console, err_console, handle_errors, open_store, print_json


class ReportFormat(StrEnum):
    html = "html"
    markdown = "markdown"
    json = "json"


def _write(text: str, output: Path | None) -> None:
    """``text`` to ``output``, or to stdout when ``output`` is None or ``-``."""
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from promptopt.errors import InputError

    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(str(output), "--output", f"cannot write the report: {exc.strerror}") from None
    # On stderr, so that stdout stays one document (e.g. `leaderboard --json --html FILE`).
    err_console.print(
        f"wrote {output} ({len(text.encode()) / 1e6:.1f} MB)" if len(text) > 1e5 else f"wrote {output}", markup=False
    )


def _num(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def leaderboard_tables(board: Any) -> list[Table]:
    """The prompt's entries as one table (a section per model), then a summary line per model."""
    table = Table(title=f"{board.name}: {len(board.entries)} versions and runs", show_lines=False)
    for column in (
        "model",
        "created",
        "kind",
        "ref",
        "labels",
        "configuration",
        "validation",
        "test",
        "trials",
        "calls",
        "tokens",
        "paid $",
        "training s",
    ):
        table.add_column(
            column,
            justify="left" if column in ("model", "created", "kind", "ref", "labels", "configuration") else "right",
            overflow="fold",
        )
    groups = board.by_model()
    for i, (model, entries) in enumerate(groups.items()):
        for j, e in enumerate(entries):
            ref = e.ref if e.kind == "version" else e.ref[:8]
            table.add_row(
                model if j == 0 else "",
                f"{e.created_at:%Y-%m-%d %H:%M}",
                e.kind,
                ref,
                ", ".join(e.labels),
                e.description,
                _num(e.validation_score),
                _num(e.test_score),
                _int(e.trials),
                _int(e.model_calls),
                _int(e.tokens),
                _num(e.cost_usd, ".4f"),
                _num(e.training_s, ".0f"),
                end_section=j == len(entries) - 1 and i < len(groups) - 1,
            )
    summary = Table(title="by model")
    for column in ("model", "entries", "best test", "best validation", "tokens", "paid $"):
        summary.add_column(column, justify="left" if column == "model" else "right")
    for model, entries in groups.items():
        tests = [e.test_score for e in entries if e.test_score is not None]
        vals = [e.validation_score for e in entries if e.validation_score is not None]
        summary.add_row(
            model,
            str(len(entries)),
            _num(max(tests, default=None)),
            _num(max(vals, default=None)),
            str(sum(e.tokens or 0 for e in entries)),
            f"{sum(e.cost_usd or 0.0 for e in entries):.4f}",
        )
    return [table, summary]


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def report(
        run_id: str = typer.Argument(..., help="Run id (or a unique prefix of at least 6 characters)."),
        fmt: ReportFormat = typer.Option(
            ReportFormat.html,
            "--format",
            "-f",
            help="html (one self-contained file), markdown (PR / CI summary) or json.",
        ),
        output: Path | None = typer.Option(
            None,
            "--output",
            "-o",
            help="File to write, '-' for stdout; default report-<run id[:8]>.html for html, stdout otherwise.",
        ),
        store: str | None = StoreOpt,
    ) -> None:
        """Report of a run: leaderboard with intervals, search charts, and the winner's test cases against the
        baseline."""
        from promptopt.reports import build_run_report, render_html, render_markdown

        built = build_run_report(open_store(store), run_id)
        if fmt is ReportFormat.html:
            _write(render_html(built), output or Path(f"report-{built.run_id[:8]}.html"))
        elif fmt is ReportFormat.markdown:
            _write(render_markdown(built), output)
        else:
            _write(built.model_dump_json(indent=2) + "\n", output)

    @app.command()
    @handle_errors
    def leaderboard(
        name: str = typer.Argument(..., help="Prompt name (the spec's task.name)."),
        html: Path | None = typer.Option(
            None, "--html", help="Also write it as a self-contained HTML file with scores over time by model."
        ),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Every registered version and every run of one prompt: scores over time, by model, with calls, tokens
        and cost."""
        from promptopt.reports import build_prompt_leaderboard, render_leaderboard_html

        board = build_prompt_leaderboard(open_store(store), name)
        if html is not None:
            _write(render_leaderboard_html(board), html)
        if as_json:
            print_json(board.model_dump(mode="json"))
            return
        for table in leaderboard_tables(board):
            console.print(table)
