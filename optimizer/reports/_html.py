"""HTML renderings: one self-contained file (plotly.js inline, no network), every user text escaped."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from promptopt.reports._markdown import chain, plain, training, written_from
from promptopt.reports._values import Estimate, PromptLeaderboard, RunReport
from promptopt.stats import format_p

_TEMPLATES = Path(__file__).with_name("templates")
# JSON inside <script> must not close the element or open a comment: escape the characters that could.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def render_html(report: RunReport) -> str:
    """The run report as one HTML document that opens offline (plotly.js embedded once, about 4.7 MB).

    Example:
        >>> Path("report.html").write_text(render_html(build_run_report(store, run_id)))  # doctest: +SKIP
    """
    from promptopt.reports._figures import run_figures

    return _render("run.html.j2", run_figures(report), r=report, generated_at=_when(report.generated_at))


def render_leaderboard_html(board: PromptLeaderboard) -> str:
    """A prompt's leaderboard (every version and run, by model) as one self-contained HTML document."""
    from promptopt.reports._figures import prompt_figures

    return _render(
        "prompt.html.j2",
        prompt_figures(board),
        b=board,
        generated_at=_when(board.generated_at),
        versions=sum(e.kind == "version" for e in board.entries),
        runs=sum(e.kind == "run" for e in board.entries),
    )


def _render(template: str, figures: dict[str, Any], **context: Any) -> str:
    return (
        _environment()
        .get_template(template)
        .render(
            plotly_js=Markup(_plotly_js()),
            version=_version(),
            figures={name: Markup(fig.to_json().translate(_SCRIPT_SAFE)) for name, fig in figures.items()},
            **context,
        )
    )


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(
        est=_estimate,
        signed=lambda v: f"{v:+.4f}",
        num=_num,
        usd=_usd,
        show=plain,
        output=_output,
        pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False),
        format_p=format_p,
        chain=chain,
        written_from=written_from,
        training=training,
        clip=_clip,
    )
    return env


@functools.cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js: str = get_plotlyjs()
    if "</script" in js.lower():  # would end the inline <script>; plotly.js never contains it
        raise RuntimeError("the bundled plotly.js cannot be inlined: it contains '</script'")
    return js


@functools.cache
def _version() -> str:
    try:
        return metadata.version("promptopt")
    except metadata.PackageNotFoundError:
        return "dev"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _usd(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"  # a call can cost a few millionths of a dollar


def _estimate(value: Estimate | None) -> str:
    if value is None:
        return ""
    if value.ci95 is None:
        return f"{value.mean:.3f}"
    return f"{value.mean:.3f} [{value.ci95[0]:.2f}, {value.ci95[1]:.2f}]"


def _clip(text: str, width: int = 100) -> str:
    """A long text's first line's worth, for a table cell whose full text is one click away."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _output(value: str | None) -> str:
    return "(no output: the call failed)" if value is None else value
