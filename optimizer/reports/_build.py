"""Compute a :class:`RunReport` from the store: the run record, its experiments, and its Optuna study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptopt.compare import compare
from promptopt.config import candidate_from_json
from promptopt.engine import EvalResult, ExperimentRole, RowResult
from promptopt.reports._optuna import distributions, importance, load_trials, trial_point
from promptopt.reports._stats import estimate, pareto_front, spread
from promptopt.reports._values import (
    CaseDiff,
    CaseDiffs,
    FineTuneCandidate,
    FrontObjective,
    Importance,
    LeaderboardRow,
    LineageNode,
    ModelSpread,
    ProgressPoint,
    RejectedInstruction,
    RunReport,
    TrialPoint,
    front_objective,
)
from promptopt.store import ExperimentRecord, RunRecord, Store

if TYPE_CHECKING:
    from promptopt.search_spaces import SearchSpace

ALL = 2**31 - 1  # "no limit" for list_experiments
_KIND_ORDER = {"regressed": 0, "improved": 1, "unchanged": 2}


def build_run_report(store: Store, run_id: str, *, seed: int = 0) -> RunReport:
    """Everything the report of run ``run_id`` (or a unique prefix of it) shows, read from ``store``.

    Works on a finished run (leaderboard and verdict from its result) and on a running, killed or failed one
    (leaderboard from the completed trials, no verdict).

    Example:
        >>> report = build_run_report(get_store(), "f7060c26")  # doctest: +SKIP
        >>> Path("report.html").write_text(render_html(report))  # doctest: +SKIP

    Raises:
        NotFound: no run, or several, match ``run_id``.
    """
    from promptopt.search import RunResult

    record = store.get_run(run_id)
    trials, directions = load_trials(str(store.url), record.id)
    experiments = store.list_experiments(run_id=record.id, limit=ALL)
    result = None if record.result is None else RunResult.model_validate(record.result)
    by_trial, tested = _by_trial(experiments, ExperimentRole.TRIAL), _by_trial(experiments, ExperimentRole.VERDICT)
    paid = _paid(by_trial)
    points = tuple(trial_point(t, paid, _model(by_trial, t)) for t in trials)
    candidates = list(result.leaderboard) if result else _candidates(record, trials)
    baseline = (
        result.baseline.trial if result else next((t.number for t in trials if t.user_attrs.get("baseline")), None)
    )
    objectives = tuple(record.settings.get("objectives", ("score",)))
    rows = _leaderboard(store, candidates, by_trial, tested, baseline, front_objective(objectives), seed=seed)
    configs = {c.trial: c.config for c in candidates}
    calls, usd = (result.model_calls, result.cost_usd) if result else store.run_usage(record.id)
    from promptopt.search_spaces import SearchSpace

    space = SearchSpace.from_json(record.space) if record.space else None
    lineage, rejected = _lineage(space, points)
    fine_tunes = _fine_tunes(space, points)
    return RunReport(
        run_id=record.id,
        name=record.name,
        status=record.status,
        created_at=record.created_at,
        finished_at=record.finished_at,
        stopped_by=result.stopped_by if result else None,
        error_message=record.error_message,
        objectives=objectives,
        directions=directions or ("maximize",),
        sampler=record.settings.get("sampler"),
        seed=record.settings.get("seed"),
        trial_count=result.trials if result else sum(p.state in ("complete", "duplicate", "failed") for p in points),
        failed_trials=result.failed_trials if result else sum(p.state == "failed" for p in points),
        model_calls=calls,
        cost_usd=usd,
        wall_s=result.wall_s if result else None,
        baseline_trial=_role(rows, "baseline"),
        winner_trial=_role(rows, "winner"),
        lift=result.lift if result else None,
        lift_ci95=result.lift_ci95 if result else None,
        p_value=result.p_value if result else None,
        leaderboard=rows,
        trials=points,
        baseline_config=configs.get(_role(rows, "baseline")),
        winner_config=configs.get(_role(rows, "winner")),
        distributions=distributions(trials),
        progress=_progress(points, _unattributed(record, experiments)),
        importance=importance(trials, directions) if trials else Importance(note="no trial yet"),
        models=_spreads(rows),
        case_diff=_case_diff(store, result, seed=seed),
        lineage=lineage,
        rejected_instructions=rejected,
        fine_tunes=fine_tunes,
        generated_at=datetime.now(UTC),
    )


def _by_trial(experiments: Sequence[ExperimentRecord], role: ExperimentRole) -> dict[int, list[ExperimentRecord]]:
    """The experiments of ``role`` (trial: validation evals; verdict: test evals) by trial number."""
    out: dict[int, list[ExperimentRecord]] = {}
    for e in experiments:
        if e.role is role and e.trial_number is not None:
            out.setdefault(e.trial_number, []).append(e)
    return out


def _model(by_trial: Mapping[int, list[ExperimentRecord]], trial: Any) -> str | None:
    """The model a trial ran on (a duplicate's is its twin's)."""
    experiments = by_trial.get(trial.number) or by_trial.get(trial.user_attrs.get("duplicate_of", -1)) or ()
    return experiments[0].model if experiments else None


def _paid(by_trial: Mapping[int, list[ExperimentRecord]]) -> dict[int, tuple[float, int]]:
    return {
        n: (
            sum(e.summary.cost_usd for e in exps if e.summary),
            sum(e.summary.model_calls + e.summary.scorer_calls for e in exps if e.summary),
        )
        for n, exps in by_trial.items()
    }


_OUTSIDE_TRIALS = (ExperimentRole.PREPASS, ExperimentRole.REFLECTION)


def _unattributed(record: RunRecord, experiments: Sequence[ExperimentRecord]) -> tuple[float, int]:
    """What the run paid outside trials, where the cumulative cost curves start: the pre-pass, the reflections
    that wrote new instructions, and the proposer's calls that built and grew the space."""
    pre = [e.summary for e in experiments if e.role in _OUTSIDE_TRIALS and e.summary is not None]
    return (
        record.space_usd + sum(s.cost_usd for s in pre),
        record.space_calls + sum(s.model_calls + s.scorer_calls for s in pre),
    )


def _lineage(
    space: SearchSpace | None, points: tuple[TrialPoint, ...]
) -> tuple[tuple[LineageNode, ...], tuple[RejectedInstruction, ...]]:
    """The instruction candidates of the run's space with how its completed trials scored each, and the
    rejected proposals; empty without a space or an instruction dimension."""
    from promptopt.search_spaces import instruction_param

    nodes, rejected = [], []
    for prompt, dim in space.instruction_dimensions() if space else []:
        scores = _instruction_scores(points, instruction_param(prompt))
        for i, (text, source, parent) in enumerate(zip(dim.candidates, dim.sources, dim.parents, strict=True)):
            got = scores.get(i, [])
            best = max(got, default=None)
            nodes.append(
                LineageNode(index=i, text=text, source=source, parent=parent, trials=len(got), best=best, prompt=prompt)
            )
        rejected += [
            RejectedInstruction(text=r.text, source=r.source, reason=r.reason, parent=r.parent, prompt=prompt)
            for r in dim.rejected
        ]
    return tuple(nodes), tuple(rejected)


def _fine_tunes(space: SearchSpace | None, points: tuple[TrialPoint, ...]) -> tuple[FineTuneCandidate, ...]:
    """The run's fine-tune jobs, from its space's fine-tune dimension, with how its trials scored each."""
    from promptopt.search_spaces import FineTuneDimension

    dim = space.find(FineTuneDimension) if space else None
    if dim is None:
        return ()
    out = []
    for name, model in dim.models.items():
        info = dim.lineage.get(name, {})
        params = info.get("params", {})
        got = [p.values[0] for p in points if p.state == "complete" and p.values and p.params.get(dim.param) == name]
        out.append(
            FineTuneCandidate(
                name=name,
                model=model,
                base_model=info.get("base_model", "?"),
                data=info.get("data", "?"),
                rows=info.get("rows", 0),
                epochs=params.get("epochs"),
                rank=params.get("rank"),
                train_s=info.get("train_s", 0.0),
                reused=info.get("reused", False),
                trials=len(got),
                best=max(got, default=None),
            )
        )
    return tuple(out)


def _instruction_scores(points: tuple[TrialPoint, ...], param: str) -> dict[int, list[float]]:
    """Validation scores of the completed trials by the instruction candidate (parameter ``param``) they used
    (a duplicate reuses its twin's eval: it is not one more try)."""
    scores: dict[int, list[float]] = {}
    for p in points:
        index = p.params.get(param)
        if p.state == "complete" and p.values and isinstance(index, int):
            scores.setdefault(index, []).append(p.values[0])
    return scores


def _progress(points: tuple[TrialPoint, ...], start: tuple[float, int]) -> tuple[ProgressPoint, ...]:
    usd, calls = start
    best: float | None = None
    out = []
    for p in points:
        if p.state not in ("complete", "duplicate", "failed"):
            continue
        usd, calls = usd + p.cost_usd, calls + p.model_calls
        value = p.values[0] if p.values and p.state != "failed" else None
        if value is not None and (best is None or value > best):
            best = value
        out.append(ProgressPoint(trial=p.number, cumulative_usd=usd, cumulative_calls=calls, value=value, best=best))
    return tuple(out)


def _leaderboard(
    store: Store,
    candidates: list[Any],
    by_trial: Mapping[int, list[ExperimentRecord]],
    tested: Mapping[int, list[ExperimentRecord]],
    baseline: int | None,
    objective: FrontObjective,
    *,
    seed: int,
) -> tuple[LeaderboardRow, ...]:
    """Rows in the candidates' order (the run's ranking); the first is the winner. ``pareto`` marks the front of
    validation score against ``objective`` per row: on a two-objective run, the run's own front."""
    rows = []
    for rank, c in enumerate(candidates, start=1):
        validation = by_trial.get(c.trial, [])
        summaries = [e.summary for e in validation + tested.get(c.trial, []) if e.summary]
        recorded = _rows(store, c.experiment_id)
        rows.append(
            LeaderboardRow(
                rank=rank,
                trial=c.trial,
                description=c.description,
                model=candidate_from_json(c.config).model if c.config else "?",
                validation=_estimate(recorded, c.validation_score, seed=seed),
                test=_estimate(_rows(store, c.test_experiment_id), c.test_score, seed=seed),
                cost_usd=c.cost_usd,
                mean_latency_s=c.mean_latency_s,
                model_calls=c.model_calls,
                cost_per_row_usd=_per_row(c.cost_per_row_usd, recorded, "call_cost_usd"),
                latency_per_row_s=_per_row(c.latency_per_row_s, recorded, "call_latency_s"),
                tokens=sum(s.task_tokens + s.scorer_tokens for s in summaries),
                errors=sum(e.summary.errors for e in validation if e.summary),
                top_answer_share=next(
                    (e.summary.top_answer_share for e in validation if e.summary and e.summary.rows), None
                ),
                baseline=c.trial == baseline,
                winner=rank == 1,
                experiment_id=c.experiment_id,
                test_experiment_id=c.test_experiment_id,
            )
        )
    points = [(r.trial, r.validation.mean, r.per_row(objective)) for r in rows if r.validation is not None]
    front = pareto_front([(trial, mean, per_row) for trial, mean, per_row in points if per_row is not None])
    return tuple(r.model_copy(update={"pareto": r.trial in front}) for r in rows)


def _rows(store: Store, experiment_id: str | None) -> list[RowResult]:
    return [] if experiment_id is None else list(store.get_result(experiment_id).rows)


def _estimate(rows: list[RowResult], score: float | None, *, seed: int) -> Any:
    if score is None:
        return None
    return estimate([r.objective for r in rows if r.objective is not None and r.error is None], mean=score, seed=seed)


def _per_row(figure: float | None, rows: list[RowResult], field: str) -> float | None:
    """The candidate's figure; for a result recorded before it had one, the mean over its eval's rows that know
    it (as the eval summary computes it now)."""
    if figure is not None:
        return figure
    known = [getattr(r, field) for r in rows if getattr(r, field) is not None]
    return sum(known) / len(known) if known else None


def _candidates(record: RunRecord, trials: list[Any]) -> list[Any]:
    """Leaderboard candidates of a run without a result, from its completed, distinct trials."""
    from promptopt.search import Candidate, trial_config
    from promptopt.search_spaces import SearchSpace

    space = SearchSpace.from_json(record.space) if record.space else None
    done = [t for t in trials if t.values and "duplicate_of" not in t.user_attrs and t.state.name == "COMPLETE"]
    return [
        Candidate.of_trial(t, trial_config(space, t) if space else None)
        for t in sorted(done, key=lambda t: (-t.values[0], t.number))
    ]


def _role(rows: tuple[LeaderboardRow, ...], role: str) -> int | None:
    return next((r.trial for r in rows if getattr(r, role)), None)


def _spreads(rows: tuple[LeaderboardRow, ...]) -> tuple[ModelSpread, ...]:
    groups: dict[str, list[LeaderboardRow]] = {}
    for r in rows:
        if r.validation is not None:
            groups.setdefault(r.model, []).append(r)
    out = []
    for model in sorted(groups):
        scores = [r.validation.mean for r in groups[model] if r.validation is not None]
        out.append(
            ModelSpread(
                model=model,
                trials=len(scores),
                scores=tuple(scores),
                **spread(scores),
                cost_usd=sum(r.cost_usd for r in groups[model]),
            )
        )
    return tuple(out)


def _case_diff(store: Store, result: Any, *, seed: int) -> CaseDiffs | None:
    if result is None or not result.baseline.test_experiment_id or not result.best.test_experiment_id:
        return None
    base = store.get_result(result.baseline.test_experiment_id)
    win = store.get_result(result.best.test_experiment_id)
    return case_diffs(base, win, seed=seed)


def case_diffs(baseline: EvalResult, winner: EvalResult, *, seed: int = 0) -> CaseDiffs:
    """Every case both evals scored, regressed first, then improved, then unchanged (largest change first)."""
    cmp = compare(baseline, winner, seed=seed)
    a, b = baseline.objective_by_case(), winner.objective_by_case()
    first_a = {r.case_id: r for r in reversed(baseline.rows)}
    first_b = {r.case_id: r for r in reversed(winner.rows)}
    cases = []
    for case in (c for c in a if c in b):
        ra, rb = first_a[case], first_b[case]
        kind = "improved" if b[case] > a[case] else "regressed" if b[case] < a[case] else "unchanged"
        cases.append(
            CaseDiff(
                case_id=case,
                kind=kind,
                input=ra.input,
                expected=ra.expected,
                baseline_output=ra.output,
                winner_output=rb.output,
                baseline_score=a[case],
                winner_score=b[case],
                baseline_trace=ra.trace or (),
                winner_trace=rb.trace or (),
            )
        )
    cases.sort(key=lambda c: (_KIND_ORDER[c.kind], -abs(c.winner_score - c.baseline_score)))
    return CaseDiffs(
        baseline_experiment_id=baseline.experiment_id,
        winner_experiment_id=winner.experiment_id,
        paired_cases=len(cases),
        delta=cmp.objective_delta,
        ci95=cmp.objective_ci95,
        p_value=cmp.p_value,
        improved=sum(c.kind == "improved" for c in cases),
        regressed=sum(c.kind == "regressed" for c in cases),
        unchanged=sum(c.kind == "unchanged" for c in cases),
        errors_baseline=cmp.errors_a,
        errors_winner=cmp.errors_b,
        cases=tuple(cases),
    )
