"""Values a report is made of: immutable, JSON round-trip, and checking their own invariants.

A :class:`RunReport` is everything the HTML, Markdown and JSON renderings show about one run; it is computed
once from the store (:func:`~promptopt.reports.build_run_report`) and rendered without touching the store again.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptopt.tasks import Span

TrialState = Literal["complete", "failed", "duplicate", "running", "pruned", "waiting"]
CaseKind = Literal["improved", "regressed", "unchanged"]
FrontObjective = Literal["cost", "latency"]
ONE_ANSWER = 0.9  # a candidate giving one answer on this share of its validation rows is flagged


def front_objective(objectives: tuple[str, ...]) -> FrontObjective:
    """What a run's Pareto front trades the validation score against: its second objective (``score,cost`` or
    ``score,latency``), or cost for a single-objective run."""
    return "latency" if "latency" in objectives else "cost"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(_Frozen):
    """A mean over the cases of one eval, with its 95% bootstrap interval (``None`` below two cases)."""

    mean: float
    ci95: tuple[float, float] | None = None
    cases: int = Field(ge=1)

    @model_validator(mode="after")
    def _mean_inside(self) -> Estimate:
        if not math.isfinite(self.mean):
            raise ValueError("a mean must be finite (an eval without scored rows has no estimate)")
        if self.ci95 is not None and not self.ci95[0] - 1e-9 <= self.mean <= self.ci95[1] + 1e-9:
            raise ValueError(f"the mean {self.mean} lies outside its interval {self.ci95}")
        return self


class LeaderboardRow(_Frozen):
    """One distinct configuration that completed, ranked by validation score (ties: earlier trial first).

    ``cost_usd``, ``mean_latency_s`` and ``model_calls`` are what its validation eval paid (a cached response is
    free and instant). ``cost_per_row_usd`` and ``latency_per_row_s`` are what its task call costs and takes per
    row when it really runs, cached or not (``None``: unknown). ``pareto``: on the front of validation score
    against the report's :attr:`RunReport.front_objective` per row.
    """

    rank: int = Field(ge=1)
    trial: int = Field(ge=0)
    description: str
    model: str
    validation: Estimate | None
    test: Estimate | None = None
    cost_usd: float = Field(ge=0)
    mean_latency_s: float | None = None
    model_calls: int = Field(ge=0)
    cost_per_row_usd: float | None = Field(None, ge=0)
    latency_per_row_s: float | None = Field(None, ge=0)
    tokens: int = Field(0, ge=0)
    errors: int = Field(0, ge=0)
    top_answer_share: float | None = Field(
        None, ge=0, le=1, description="Share of its validation rows that gave its most common answer."
    )
    baseline: bool = False
    winner: bool = False
    pareto: bool = False
    experiment_id: str | None = None
    test_experiment_id: str | None = None

    @property
    def one_answer(self) -> bool:
        """It gave the same answer on 90% or more of 10 or more validation rows: whatever the input, mostly
        one label (its score is then about that label's share of the rows)."""
        cases = self.validation.cases if self.validation else 0
        return self.top_answer_share is not None and self.top_answer_share >= ONE_ANSWER and cases >= 10

    def per_row(self, objective: FrontObjective) -> float | None:
        """This configuration's cost (dollars) or latency (seconds) per row, as the search's objective has it."""
        return self.cost_per_row_usd if objective == "cost" else self.latency_per_row_s


class TrialPoint(_Frozen):
    """One Optuna trial as the charts need it. ``cost_usd`` and ``model_calls`` are what the trial paid (a
    duplicate pays nothing); ``params`` and ``values`` are the study's."""

    number: int = Field(ge=0)
    state: TrialState
    values: tuple[float, ...] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    cost_usd: float = Field(0.0, ge=0)
    model_calls: int = Field(0, ge=0)
    duplicate_of: int | None = None
    error: str | None = None


class ProgressPoint(_Frozen):
    """The best validation score after a trial, and what the search had spent by then."""

    trial: int = Field(ge=0)
    cumulative_usd: float = Field(ge=0)
    cumulative_calls: int = Field(ge=0)
    value: float | None
    best: float | None


class Importance(_Frozen):
    """fANOVA importance of each searched parameter for the validation score (they sum to 1), or why none."""

    values: dict[str, float] = Field(default_factory=dict)
    note: str | None = None


class ModelSpread(_Frozen):
    """Validation scores of the distinct configurations that ran on one model."""

    model: str
    trials: int = Field(ge=1)
    scores: tuple[float, ...]
    best: float
    mean: float
    median: float
    worst: float
    cost_usd: float = Field(ge=0)


class CaseDiff(_Frozen):
    """One test case scored by both the baseline and the winner (with a code task's traces: each side's
    prompt calls, in order)."""

    case_id: str
    kind: CaseKind
    input: dict[str, Any]
    expected: Any = None
    baseline_output: str | None
    winner_output: str | None
    baseline_score: float
    winner_score: float
    baseline_trace: tuple[Span, ...] = ()
    winner_trace: tuple[Span, ...] = ()

    @model_validator(mode="after")
    def _kind_matches(self) -> CaseDiff:
        kind = (
            "improved"
            if self.winner_score > self.baseline_score
            else "regressed"
            if self.winner_score < self.baseline_score
            else "unchanged"
        )
        if kind != self.kind:
            raise ValueError(
                f"case {self.case_id}: scores {self.baseline_score} -> {self.winner_score} are {kind}, not {self.kind}"
            )
        return self


class CaseDiffs(_Frozen):
    """Winner against baseline on the test split, case by case (the run's verdict, shown row by row)."""

    baseline_experiment_id: str
    winner_experiment_id: str
    paired_cases: int = Field(ge=0)
    delta: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    improved: int = Field(ge=0)
    regressed: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    errors_baseline: int = Field(0, ge=0)
    errors_winner: int = Field(0, ge=0)
    cases: tuple[CaseDiff, ...]

    @model_validator(mode="after")
    def _counts(self) -> CaseDiffs:
        counted = {k: sum(c.kind == k for c in self.cases) for k in ("improved", "regressed", "unchanged")}
        if counted != {"improved": self.improved, "regressed": self.regressed, "unchanged": self.unchanged}:
            raise ValueError(f"case counts {counted} disagree with the totals")
        if len(self.cases) != self.paired_cases:
            raise ValueError(f"{len(self.cases)} cases listed for {self.paired_cases} paired cases")
        return self


class FineTuneCandidate(_Frozen):
    """One ``search.fine_tune`` job of the run: the model it made, what from, what its training cost this run
    (``train_s`` 0 and ``reused`` when an earlier run had trained the same job), and how the search's trials
    scored it (``trials`` completed trials used it; ``best`` their best validation score, ``None``: untried)."""

    name: str
    model: str
    base_model: str
    data: str
    rows: int = Field(ge=0)
    epochs: int | None = None
    rank: int | None = None
    train_s: float = Field(0.0, ge=0)
    reused: bool = False
    trials: int = Field(0, ge=0)
    best: float | None = None


class LineageNode(_Frozen):
    """One instruction candidate of the run's space: where it came from and how the search's trials scored it.

    ``parent`` is the index of the candidate it was written from (``None``: from the spec, before the search);
    ``trials`` counts the completed trials that used it (a duplicate, which reuses its twin's eval, does not
    count); ``best`` is the best validation score among them (``None``: never tried). ``prompt``: a code
    task's prompt whose candidate it is (each prompt has its own pool, numbered from 0).
    """

    index: int = Field(ge=0)
    text: str
    source: str
    parent: int | None = Field(None, ge=0)
    prompt: str | None = None
    trials: int = Field(0, ge=0)
    best: float | None = None

    @model_validator(mode="after")
    def _tried_has_best(self) -> LineageNode:
        if self.parent is not None and self.parent >= self.index:
            raise ValueError(f"candidate {self.index} has parent {self.parent}: a child follows its parent")
        if (self.trials == 0) != (self.best is None):
            raise ValueError(f"candidate {self.index}: {self.trials} trial(s) but best score {self.best}")
        return self


class RejectedInstruction(_Frozen):
    """A proposed instruction that never became a candidate, its source, why, and the candidate it was written
    from (``parent``; ``None``: from the spec)."""

    text: str
    source: str
    reason: str
    parent: int | None = Field(None, ge=0)
    prompt: str | None = None


class RunReport(_Frozen):
    """Everything known about one optimization run, as the report shows it.

    ``leaderboard`` is ordered by rank (validation score, best first); ``trials`` has every Optuna trial in
    order; ``progress`` has one point per finished trial. Verdict fields (``lift``...) are ``None`` for a run
    that did not reach its verdict. ``lineage`` has one node per instruction candidate of the run's space and
    ``rejected_instructions`` the proposals that failed their check (both empty for a run whose space searches
    no instruction, and in reports made before they existed).
    """

    run_id: str
    name: str
    status: str
    created_at: datetime
    finished_at: datetime | None = None
    stopped_by: str | None = None
    error_message: str | None = None
    objectives: tuple[str, ...] = ("score",)
    directions: tuple[str, ...] = ("maximize",)
    sampler: str | None = None
    seed: int | None = None
    trial_count: int = Field(ge=0)
    failed_trials: int = Field(ge=0)
    model_calls: int = Field(ge=0)
    cost_usd: float = Field(ge=0)
    wall_s: float | None = None
    baseline_trial: int | None = None
    winner_trial: int | None = None
    lift: float | None = None
    lift_ci95: tuple[float, float] | None = None
    p_value: float | None = None
    baseline_config: dict[str, Any] | None = Field(None, description="The baseline's full configuration.")
    winner_config: dict[str, Any] | None = Field(None, description="The winner's full configuration.")
    leaderboard: tuple[LeaderboardRow, ...]
    trials: tuple[TrialPoint, ...]
    distributions: dict[str, str] = Field(default_factory=dict, description="Optuna distribution JSON by param.")
    progress: tuple[ProgressPoint, ...]
    importance: Importance
    models: tuple[ModelSpread, ...]
    case_diff: CaseDiffs | None = None
    lineage: tuple[LineageNode, ...] = Field(
        (), description="Every instruction candidate in index order; empty without an instruction dimension."
    )
    rejected_instructions: tuple[RejectedInstruction, ...] = ()
    fine_tunes: tuple[FineTuneCandidate, ...] = Field(
        (), description="The run's fine-tune jobs with their training cost; empty when it trained none."
    )
    generated_at: datetime

    @model_validator(mode="after")
    def _consistent(self) -> RunReport:
        if [r.rank for r in self.leaderboard] != list(range(1, len(self.leaderboard) + 1)):
            raise ValueError("leaderboard ranks must be 1, 2, 3... in order")
        listed = {r.trial for r in self.leaderboard}
        for role, trial in (("baseline", self.baseline_trial), ("winner", self.winner_trial)):
            if trial is not None and trial not in listed:
                raise ValueError(f"the {role} trial {trial} is not on the leaderboard")
        pools: dict[str | None, int] = {}
        for n in self.lineage:
            if n.index != pools.get(n.prompt, 0):
                raise ValueError("lineage nodes must be candidates 0, 1, 2... in order (per prompt of a code task)")
            pools[n.prompt] = n.index + 1
        for r in self.rejected_instructions:
            if r.parent is not None and r.parent >= pools.get(r.prompt, 0):
                raise ValueError(f"a rejected proposal's parent {r.parent} is not a candidate of the lineage")
        return self

    def fine_tune_of(self, model: str) -> FineTuneCandidate | None:
        """The fine-tune job whose model ``model`` is (``None``: a model no job of this run made)."""
        return next((f for f in self.fine_tunes if f.model == model), None)

    def row(self, trial: int) -> LeaderboardRow:
        """The leaderboard row of ``trial``.

        Raises:
            KeyError: the trial is not on the leaderboard (it failed, or duplicates another).
        """
        for r in self.leaderboard:
            if r.trial == trial:
                return r
        raise KeyError(f"trial {trial} is not on the leaderboard of run {self.run_id}")

    def ancestry(self, index: int, prompt: str | None = None) -> tuple[int, ...]:
        """The candidates from the root down to candidate ``index`` (of a code task's ``prompt``): ``(1, 2)``
        for a child of 1 written from the spec's wording."""
        nodes = {n.index: n for n in self.lineage if n.prompt == prompt}
        chain = [index]
        while (parent := nodes[chain[-1]].parent) is not None:
            chain.append(parent)
        return tuple(reversed(chain))

    def winner_uses(self, node: LineageNode) -> bool:
        """The winner's configuration has this instruction candidate (for its prompt)."""
        point = next((t for t in self.trials if t.number == self.winner_trial), None)
        param = "instruction" if node.prompt is None else f"{node.prompt}.instruction"
        return point is not None and point.params.get(param) == node.index

    @property
    def winner_instruction(self) -> int | None:
        """The instruction candidate the winner used (``None``: no winner, or no instruction searched)."""
        if not self.lineage or self.winner_trial is None:
            return None
        point = next((t for t in self.trials if t.number == self.winner_trial), None)
        index = None if point is None else point.params.get("instruction")
        return index if isinstance(index, int) and 0 <= index < len(self.lineage) else None

    @property
    def front_objective(self) -> FrontObjective:
        """What the ``pareto`` flags and the Pareto chart trade the validation score against (per row)."""
        return front_objective(self.objectives)

    @property
    def baseline(self) -> LeaderboardRow | None:
        return None if self.baseline_trial is None else self.row(self.baseline_trial)

    @property
    def winner(self) -> LeaderboardRow | None:
        return None if self.winner_trial is None else self.row(self.winner_trial)


class PromptEntry(_Frozen):
    """One line of a prompt's leaderboard: a registered version, or a run of the prompt's task."""

    kind: Literal["version", "run"]
    ref: str = Field(description="v<number> for a version, the run id for a run.")
    created_at: datetime
    model: str | None
    description: str
    validation_score: float | None = None
    test_score: float | None = None
    labels: tuple[str, ...] = ()
    run_id: str | None = None
    trial: int | None = None
    status: str
    trials: int | None = None
    model_calls: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    training_s: float | None = Field(
        None, description="Fine-tune training time: the version's job, or all jobs of the run (None: no fine-tune)."
    )

    @property
    def score(self) -> float | None:
        """The held-out score when there is one, else the validation score."""
        return self.test_score if self.test_score is not None else self.validation_score


class PromptLeaderboard(_Frozen):
    """Every registered version and every run of one prompt, oldest first, with spreads per model."""

    name: str
    entries: tuple[PromptEntry, ...]
    labels: dict[str, int] = Field(default_factory=dict)
    generated_at: datetime

    @model_validator(mode="after")
    def _ordered(self) -> PromptLeaderboard:
        times = [e.created_at for e in self.entries]
        if times != sorted(times):
            raise ValueError("entries must be ordered by created_at")
        return self

    def by_model(self) -> dict[str, tuple[PromptEntry, ...]]:
        """Entries grouped by model (``"unknown"`` when an unfinished run has none), models sorted."""
        groups: dict[str, list[PromptEntry]] = {}
        for e in self.entries:
            groups.setdefault(e.model or "unknown", []).append(e)
        return {m: tuple(groups[m]) for m in sorted(groups)}
