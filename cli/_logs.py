"""`optimize logs ...`: list production logs, export them as a dataset, per-version numbers, online scores."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from promptopt.cli._common import JsonOpt, StoreOpt, console, handle_errors, open_store, print_json
from promptopt.errors import InputError

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

PromptOpt = typer.Option(None, "--prompt", "-p", help="Only this prompt.")
VersionOpt = typer.Option(None, "--version", min=1, help="Only logs of this version.")
LabelOpt = typer.Option(None, "--label", help="Only logs of calls made through this label (e.g. production).")
SinceOpt = typer.Option(
    None, "--since", help="From this time: ISO 8601 (2026-11-01, 2026-11-01T08:00Z) or an age (30m, 12h, 7d)."
)
UntilOpt = typer.Option(None, "--until", help="Before this time (same forms as --since).")
FeedbackOpt = typer.Option(False, "--with-feedback", help="Only logs that have feedback.")


@contextmanager
def opened(url: str | None) -> Iterator[Any]:
    """The store at ``url`` for one command, its connections closed at the end."""
    store = open_store(url)
    try:
        yield store
    finally:
        store.dispose()


def parse_when(text: str | None, option: str, *, now: datetime | None = None) -> datetime | None:
    """``--since``/``--until``: an ISO 8601 date or time (UTC unless it says otherwise), or an age like ``7d``."""
    if text is None:
        return None
    found = _AGO.match(text.strip())
    if found:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(found.group(1)) * _UNIT_S[found.group(2)])
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            option,
            option.lstrip("-"),
            f"{text!r} is neither an ISO 8601 time (2026-11-01, 2026-11-01T08:00Z) nor an age (30m, 12h, 7d)",
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _query(
    prompt: str | None,
    version: int | None,
    label: str | None,
    since: str | None,
    until: str | None,
    with_feedback: bool,
    limit: int | None = None,
    newest_first: bool = False,
) -> Any:
    from pydantic import ValidationError

    from promptopt.logs import LogQuery

    try:
        return LogQuery(
            prompt=prompt,
            version=version,
            label=label,
            since=parse_when(since, "--since"),
            until=parse_when(until, "--until"),
            with_feedback=with_feedback,
            limit=limit,
            newest_first=newest_first,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        raise InputError(f"--{field}", field, err["msg"]) from None


def _short(value: Any, width: int = 48) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _logs_table(entries: list[Any]) -> Table:
    table = Table(title=f"{len(entries)} log(s)")
    for column in ("time", "prompt", "version", "input", "output", "feedback", "id"):
        table.add_column(column, overflow="fold")
    for e in entries:
        fb = e.feedback
        said = (
            ""
            if fb is None
            else " ".join(
                x
                for x in (
                    None if fb.score is None else f"score={fb.score:g}",
                    None if fb.label is None else f"label={fb.label}",
                    None if fb.corrected is None else f"corrected={_short(fb.corrected, 24)}",
                )
                if x
            )
        )
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M:%S}",
            e.prompt,
            "" if e.version is None else str(e.version),
            _short(e.input),
            _short(e.output),
            said,
            e.id[:12],
        )
    return table


def _stats_table(prompt: str, stats: list[Any]) -> Table:
    table = Table(title=f"{prompt}: production logs by version")
    for column in (
        "version",
        "logs",
        "online score",
        "scored",
        "scorer errors",
        "feedback rate",
        "feedback score",
        "first",
        "last",
    ):
        table.add_column(column, justify="left" if column in ("first", "last") else "right")
    for s in stats:
        table.add_row(
            "none" if s.version is None else str(s.version),
            str(s.logs),
            "" if s.online_score is None else f"{s.online_score:.3f}",
            str(s.scored_logs),
            str(s.scorer_errors),
            f"{s.feedback_rate:.1%}",
            "" if s.feedback_score is None else f"{s.feedback_score:.3f}",
            f"{s.first_at:%Y-%m-%d %H:%M}",
            f"{s.last_at:%Y-%m-%d %H:%M}",
        )
    return table


def register(app: typer.Typer) -> None:
    """Add the ``logs`` command group to ``app``."""
    logs_app = typer.Typer(
        name="logs",
        no_args_is_help=True,
        help="Production logs (from PromptLogger): list, export as a dataset, stats, online scores.",
    )
    app.add_typer(logs_app, name="logs")

    @logs_app.command("list")
    @handle_errors
    def list_(
        prompt: str | None = PromptOpt,
        version: int | None = VersionOpt,
        label: str | None = LabelOpt,
        since: str | None = SinceOpt,
        until: str | None = UntilOpt,
        with_feedback: bool = FeedbackOpt,
        limit: int = typer.Option(50, min=1, help="At most this many: the newest."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """List the newest logs (shown oldest first) with their latest feedback."""
        from promptopt.logs import LogStore

        query = _query(prompt, version, label, since, until, with_feedback, limit, newest_first=True)
        with opened(store) as the_store:
            entries = LogStore(the_store).query(query)[::-1]
        if as_json:
            print_json([e.model_dump(mode="json") for e in entries])
        else:
            console.print(_logs_table(entries))

    @logs_app.command("export")
    @handle_errors
    def export(
        out: Path = typer.Option(..., "--out", "-o", help="The JSONL file to write (never overwritten)."),
        prompt: str | None = PromptOpt,
        version: int | None = VersionOpt,
        label: str | None = LabelOpt,
        since: str | None = SinceOpt,
        until: str | None = UntilOpt,
        with_feedback: bool = FeedbackOpt,
        require_expected: bool = typer.Option(
            False,
            "--require-expected",
            help="Only logs whose feedback gives a reference (a label or a corrected output).",
        ),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Write the selected logs as eval rows (input, expected from feedback, metadata with the log id and
        version) to a JSONL file that a spec can name as its data; prints the dataset's content hash."""
        from promptopt.logs import export_dataset

        query = _query(prompt, version, label, since, until, with_feedback)
        with opened(store) as the_store:
            result = export_dataset(the_store, query, out, require_expected=require_expected)
        if as_json:
            print_json(result.model_dump(mode="json"))
            return
        console.print(
            f"wrote {result.records} record(s), {result.with_expected} with an expected value, to {result.path}",
            markup=False,
            soft_wrap=True,
        )
        console.print(f"dataset {result.hash}", markup=False)

    @logs_app.command("stats")
    @handle_errors
    def stats(
        prompt: str = typer.Argument(..., help="The prompt name."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Per version: logs, mean online score, feedback rate (the score trend across versions)."""
        from promptopt.errors import NotFound
        from promptopt.logs import LogStore

        with opened(store) as the_store:
            found = LogStore(the_store).stats(prompt)
        if not found:
            raise NotFound(f"no logs of prompt {prompt!r}")
        if as_json:
            print_json([{**s.model_dump(mode="json"), "feedback_rate": s.feedback_rate} for s in found])
        else:
            console.print(_stats_table(prompt, found))

    @logs_app.command("score")
    @handle_errors
    def score(
        prompt: str = typer.Argument(..., help="The prompt name."),
        spec: Path = typer.Option(
            ..., "--spec", help="Spec whose reference-free scorers (regex, json_valid, llm_judge) score the logs."
        ),
        sample_rate: float = typer.Option(0.1, "--sample-rate", help="Share of the new logs scored (seeded)."),
        seed: int = typer.Option(0, help="Seed of the sample."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Run the spec's reference-free scorers on a seeded sample of new logs and record the scores."""
        import asyncio

        from promptopt.logs import score_logs
        from promptopt.scorers import build_scorers
        from promptopt.spec import load_spec

        loaded = load_spec(spec)
        free = [s for s in loaded.spec.scorers if s.type in ("regex", "json_valid", "llm_judge")]
        if not free:
            raise InputError(
                str(spec),
                "scorers",
                "no reference-free scorer (regex, json_valid, llm_judge) to score production logs with",
            )
        backend = None
        if any(s.type == "llm_judge" for s in free):
            from promptopt.models import get_backend

            backend = get_backend()
        scorers = build_scorers(free, base_dir=loaded.base_dir, backend=backend, source=str(spec))
        try:
            with opened(store) as the_store:
                report = score_logs(the_store, prompt, scorers=scorers, sample_rate=sample_rate, seed=seed)
        finally:
            asyncio.run(_close(scorers))
        if as_json:
            print_json(report.model_dump(mode="json"))
            return
        means = ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in report.means.items())
        console.print(
            f"{prompt}: {report.considered} new log(s), {report.sampled} sampled, {report.recorded} "
            f"score(s) recorded, {report.errors} error(s); means: {means}",
            markup=False,
            soft_wrap=True,
        )


async def _close(scorers: list[Any]) -> None:
    for scorer in scorers:
        await scorer.aclose()
