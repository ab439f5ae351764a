"""Reports of optimization runs and prompts: computed as values, rendered separately.

``build_run_report(store, run_id)`` returns a frozen :class:`RunReport`; ``render_html`` makes one
self-contained HTML file of it (opens offline), ``render_markdown`` a PR / CI summary, and
``report.model_dump_json()`` the JSON. ``build_prompt_leaderboard(store, name)`` does the same for every version
and run of one prompt. ``gate(candidate, incumbent, threshold=...)`` is the CI check of ``optimize eval
--against``; ``promptopt.reports.router(store_factory)`` serves the reports over HTTP (imports FastAPI).

Example:
    >>> from promptopt.reports import build_run_report, render_html
    >>> report = build_run_report(get_store(), "f7060c26")  # doctest: +SKIP
    >>> Path("report.html").write_text(render_html(report))  # doctest: +SKIP
"""

from typing import Any

from promptopt.reports._build import build_run_report, case_diffs
from promptopt.reports._ci_gate import GateResult, gate
from promptopt.reports._html import render_html, render_leaderboard_html
from promptopt.reports._markdown import render_markdown
from promptopt.reports._prompts import build_prompt_leaderboard
from promptopt.reports._values import (
    CaseDiff,
    CaseDiffs,
    Estimate,
    Importance,
    LeaderboardRow,
    ModelSpread,
    ProgressPoint,
    PromptEntry,
    PromptLeaderboard,
    RunReport,
    TrialPoint,
)

__all__ = [
    "CaseDiff",
    "CaseDiffs",
    "Estimate",
    "GateResult",
    "Importance",
    "LeaderboardRow",
    "ModelSpread",
    "ProgressPoint",
    "PromptEntry",
    "PromptLeaderboard",
    "RunReport",
    "TrialPoint",
    "build_prompt_leaderboard",
    "build_run_report",
    "case_diffs",
    "gate",
    "render_html",
    "render_leaderboard_html",
    "render_markdown",
    "router",
]


def __getattr__(name: str) -> Any:
    # The HTTP router imports FastAPI; commands that only render or gate should not pay for that.
    if name == "router":
        from promptopt.reports._routes import router

        return router
    raise AttributeError(f"module 'promptopt.reports' has no attribute {name!r}")
