"""Plotly figures of a report (the only module that imports plotly). Optuna's own charts where they fit:
optimization history, parameter importances and the Pareto front are drawn by ``optuna.visualization`` from
studies replayed out of the report; the rest are small plotly figures."""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
from optuna.visualization import plot_optimization_history, plot_param_importances, plot_pareto_front

from promptopt.reports._optuna import Precomputed, front_study, quiet_optuna, replay
from promptopt.reports._values import ModelSpread, ProgressPoint, PromptLeaderboard, RunReport

SCORE = "validation score"
_PER_ROW = {"cost": "cost per row (USD)", "latency": "latency per row (s)"}
_LAYOUT = {
    "height": 420,
    "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
    "template": "plotly_white",
    "title_font_size": 15,
}


def run_figures(report: RunReport) -> dict[str, go.Figure]:
    """The figures of a run report by name; a figure whose data is missing is left out."""
    builders: dict[str, Callable[[RunReport], go.Figure | None]] = {
        "history": _history,
        "importance": _importance,
        "pareto": _pareto,
        "models": _models,
        "by_cost": lambda r: (
            _best_so_far(r.progress, "cumulative_usd", "cumulative cost (USD)") if r.cost_usd > 0 else None
        ),
        "by_calls": lambda r: _best_so_far(r.progress, "cumulative_calls", "cumulative model calls"),
    }
    with quiet_optuna():
        figures = {name: build(report) for name, build in builders.items()}
    return {name: fig.update_layout(**_LAYOUT) for name, fig in figures.items() if fig is not None}


def _first(trial: object) -> float:
    return trial.values[0]  # type: ignore[attr-defined, no-any-return]


def _history(report: RunReport) -> go.Figure | None:
    if not any(r.validation for r in report.leaderboard):
        return None
    # Optuna draws the best-so-far line only without ``target``, i.e. for a single objective.
    target = None if len(report.directions) == 1 else _first
    fig = plot_optimization_history(replay(report), target=target, target_name=SCORE)
    return fig.update_layout(title="Validation score by trial")


def _importance(report: RunReport) -> go.Figure | None:
    if not report.importance.values:
        return None
    fig = plot_param_importances(
        replay(report), evaluator=Precomputed(report.importance.values), target=_first, target_name=SCORE
    )
    return fig.update_layout(title="Parameter importance (PED-ANOVA)")


def _pareto(report: RunReport) -> go.Figure | None:
    """The front the leaderboard's ``pareto`` flags mark: validation score against the run's own second objective
    per row (cost for a single-objective run)."""
    objective = report.front_objective
    if not any(r.validation and r.per_row(objective) is not None for r in report.leaderboard):
        return None
    fig = plot_pareto_front(front_study(report.leaderboard, objective), target_names=[SCORE, _PER_ROW[objective]])
    return fig.update_layout(title=f"Quality against {objective} per row (Pareto front)")


def _best_so_far(progress: tuple[ProgressPoint, ...], axis: str, label: str) -> go.Figure | None:
    if not progress:
        return None
    xs = [getattr(p, axis) for p in progress]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[p.value for p in progress],
            mode="markers",
            name="trial",
            text=[f"trial {p.trial}" for p in progress],
            marker={"opacity": 0.55},
        )
    )
    fig.add_trace(go.Scatter(x=xs, y=[p.best for p in progress], mode="lines", line_shape="hv", name="best so far"))
    return fig.update_layout(title=f"Best so far against {label}", xaxis_title=label, yaxis_title=SCORE)


def _models(report: RunReport) -> go.Figure | None:
    return spread_figure(report.models, "Validation scores by model")


def spread_figure(spreads: tuple[ModelSpread, ...], title: str) -> go.Figure | None:
    if not spreads:
        return None
    fig = go.Figure([go.Box(y=list(s.scores), name=s.model, boxpoints="all", jitter=0.4, pointpos=0) for s in spreads])
    return fig.update_layout(title=title, yaxis_title=SCORE, showlegend=False)


def prompt_figures(board: PromptLeaderboard) -> dict[str, go.Figure]:
    """Scores over time, one trace per model (circles: runs' winners, diamonds: registered versions)."""
    fig = go.Figure()
    for model, entries in board.by_model().items():
        scored = [e for e in entries if e.score is not None]
        if not scored:
            continue
        fig.add_trace(
            go.Scatter(
                x=[e.created_at.isoformat() for e in scored],
                y=[e.score for e in scored],
                mode="lines+markers",
                name=model,
                marker={"symbol": ["diamond" if e.kind == "version" else "circle" for e in scored], "size": 10},
                text=[f"{e.kind} {e.ref[:12]}: {e.description}" for e in scored],
                hoverinfo="text+y",
            )
        )
    fig.update_layout(
        title=f"{board.name}: test score (validation when untested) over time, by model",
        xaxis_title="created",
        yaxis_title="score",
        yaxis_range=[-0.02, 1.02],
        **_LAYOUT,
    )
    return {"over_time": fig} if fig.data else {}
