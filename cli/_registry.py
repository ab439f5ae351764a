"""`optimize registry ...`: list, show, diff, promote, rollback and history of versioned prompts."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

import typer
from rich.table import Table

from promptopt.cli._common import JsonOpt, StoreOpt, console, handle_errors, open_store, print_json

WhoOpt = typer.Option(None, "--who", help="Who does it (kept in the audit log); default $USER.")
WhyOpt = typer.Option(None, "--why", help="Why (kept in the audit log).")
LabelOpt = typer.Option(..., "--label", "-l", help="Label name, e.g. production.")


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container with an arbitrary uid)
        return "unknown"


def _registry(store: str | None) -> Any:
    from promptopt.registry import Registry

    return Registry(open_store(store))


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _versions_table(name: str, versions: list[Any], labels: dict[str, int]) -> Table:
    table = Table(title=f"{name}: {len(versions)} version(s)")
    for column in ("version", "labels", "hash", "model", "validation", "test", "run / trial", "created", "by"):
        table.add_column(column, justify="right" if column in ("version", "validation", "test") else "left")
    for v in versions:
        pointing = ", ".join(label for label, at in labels.items() if at == v.version)
        origin = "" if v.lineage.run_id is None else f"{v.lineage.run_id[:8]} / {v.lineage.trial}"
        table.add_row(
            str(v.version),
            pointing,
            v.config_hash[:12],
            v.config.model,
            _score(v.lineage.validation_score),
            _score(v.lineage.test_score),
            origin,
            f"{v.created_at:%Y-%m-%d %H:%M}",
            v.created_by,
        )
    return table


def _event_line(e: Any) -> str:
    before = "none" if e.from_version is None else f"v{e.from_version}"
    if e.kind == "refuse":
        what = f"kept at {before}, refused v{e.candidate_version}"
    else:
        what = f"{before} -> v{e.to_version}" + (" (unchanged)" if not e.moved else "")
    return f"{e.at:%Y-%m-%d %H:%M:%S} {e.label}: {e.kind} {what} by {e.who}" + (f": {e.why}" if e.why else "")


def _print_event(event: Any, as_json: bool) -> None:
    if as_json:
        print_json(event.model_dump(mode="json"))
    else:
        console.print(_event_line(event), markup=False, soft_wrap=True)


def _show(version: Any, labels: dict[str, int]) -> None:
    pointing = ", ".join(label for label, at in labels.items() if at == version.version) or "no label"
    console.print(
        f"[bold]{version.name} v{version.version}[/] ({pointing}) {version.config_hash[:12]}, "
        f"registered {version.created_at:%Y-%m-%d %H:%M} by {version.created_by}",
        soft_wrap=True,
    )
    lineage = {k: v for k, v in version.lineage.model_dump().items() if v is not None}
    if lineage:
        console.print("lineage: " + ", ".join(f"{k}={v}" for k, v in lineage.items()), soft_wrap=True, markup=False)
    from promptopt.config import PipelineConfig

    config = version.config
    if not isinstance(config, PipelineConfig):
        _show_prompt(config)
        return
    console.print(
        f"code task: function {config.function}, code hash {config.code_hash[:12]}, output {config.output.type}, "
        f"{len(config.prompts)} prompt(s)",
        markup=False,
        soft_wrap=True,
    )
    for name, prompt in config.prompts.items():
        console.print(f"[bold]prompt {name}[/]")
        _show_prompt(prompt)


def _show_prompt(config: Any) -> None:
    for message in config.messages:
        console.print(f"[bold]\\[{message.role}][/]")
        console.print(message.content, markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"model {config.model}, {len(config.examples)} example(s), output {config.output.type}, "
        f"params {config.params.model_dump(exclude_none=True)}",
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the ``registry`` command group to ``app``."""
    registry_app = typer.Typer(
        name="registry",
        no_args_is_help=True,
        help="Versioned prompts: labels (production, staging...), audit log, rollback.",
    )
    app.add_typer(registry_app, name="registry")

    @registry_app.command("list")
    @handle_errors
    def list_(
        name: str | None = typer.Argument(None, help="A prompt: list its versions."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """List the prompts, or the versions of one prompt."""
        registry = _registry(store)
        if name is not None:
            versions, labels = registry.versions(name), registry.labels(name)
            if as_json:
                print_json(
                    {
                        "name": name,
                        "labels": labels,
                        "versions": [v.model_dump(mode="json", by_alias=True) for v in versions],
                    }
                )
            else:
                console.print(_versions_table(name, versions, labels))
            return
        prompts = registry.list_prompts()
        if as_json:
            print_json([p.model_dump(mode="json") for p in prompts])
            return
        table = Table(title=f"{len(prompts)} prompt(s)")
        for column in ("name", "latest", "labels", "updated"):
            table.add_column(column)
        for p in prompts:
            table.add_row(
                p.name,
                f"v{p.latest_version}",
                ", ".join(f"{k}=v{v}" for k, v in p.labels.items()),
                f"{p.updated_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)

    @registry_app.command()
    @handle_errors
    def show(
        name: str = typer.Argument(..., help="Prompt name."),
        version: int | None = typer.Option(None, "--version", "-v", help="Version number."),
        label: str | None = typer.Option(None, "--label", "-l", help="The version this label points at."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Show one version (default: the newest): template, parameters, lineage, labels (a code task's: its
        function and code hash, then each prompt)."""
        registry = _registry(store)
        found = registry.get(name, version=version, label=label)
        labels = registry.labels(name)
        if as_json:
            print_json(
                {
                    **found.model_dump(mode="json", by_alias=True),
                    "labels": sorted(k for k, v in labels.items() if v == found.version),
                }
            )
        else:
            _show(found, labels)

    @registry_app.command()
    @handle_errors
    def diff(
        name: str = typer.Argument(..., help="Prompt name."),
        v1: int = typer.Argument(..., help="From."),
        v2: int = typer.Argument(..., help="To."),
        store: str | None = StoreOpt,
    ) -> None:
        """Text diff of two versions: template, examples, parameters, scores (a code task's: its function,
        then prompt by prompt)."""
        text = _registry(store).diff(name, v1, v2)
        sys.stdout.write((text or f"v{v1} and v{v2} are the same version") + "\n")

    @registry_app.command()
    @handle_errors
    def promote(
        name: str = typer.Argument(..., help="Prompt name."),
        version: int = typer.Argument(..., help="The version the label will point at."),
        label: str = LabelOpt,
        why: str | None = WhyOpt,
        who: str | None = WhoOpt,
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Point a label at a version; the move is written to the audit log."""
        event = _registry(store).set_label(name, label, version, who=_who(who), why=why)
        _print_event(event, as_json)

    @registry_app.command()
    @handle_errors
    def rollback(
        name: str = typer.Argument(..., help="Prompt name."),
        label: str = LabelOpt,
        why: str | None = WhyOpt,
        who: str | None = WhoOpt,
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Move a label back to the version it pointed at before its last move."""
        event = _registry(store).rollback(name, label, who=_who(who), why=why)
        _print_event(event, as_json)

    @registry_app.command()
    @handle_errors
    def history(
        name: str = typer.Argument(..., help="Prompt name."),
        label: str | None = typer.Option(None, "--label", "-l", help="Only this label."),
        store: str | None = StoreOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """The audit log of a prompt's labels: every move, and every promotion the gate refused, with why."""
        events = _registry(store).history(name, label=label)
        if as_json:
            print_json([e.model_dump(mode="json") for e in events])
            return
        for event in events:
            console.print(_event_line(event), markup=False, soft_wrap=True)
        if not events:
            console.print(f"no label of {name} has been set yet", markup=False)
