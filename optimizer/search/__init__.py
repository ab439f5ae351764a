"""The optimizer: an Optuna study over the search space, trials as full evals, a held-out verdict.

A run is a sequence of typed steps, each a public function so that other entry points (the scheduler's warm
start) reuse them: :func:`plan_run` (limits, the verdict's reserve) -> :func:`begin_run`, :func:`run_space`
or :func:`build_space`, :func:`open_run_study`, :func:`queue_start` -> :func:`search_loop` (returns a
:class:`StopReason`) -> :func:`give_verdict` (a :class:`Verdict`) -> :func:`promote_winner` (a
``PromotionDecision``). :class:`SearchRun` runs them in order and reports :data:`RunEvent` values.
"""

from promptopt.search._build import PrePass
from promptopt.search._estimate import estimate_run
from promptopt.search._events import (
    FineTuneTrained,
    InstructionsEvolved,
    OnEvent,
    PrepassStarted,
    PromotionDecided,
    RunEvent,
    RunStarted,
    SpaceBuilt,
    StopReason,
    TestEvalStarted,
    TrialFinished,
    TrialsRecovered,
)
from promptopt.search._evolve import EvolvePlan
from promptopt.search._executor import LocalExecutor, TrialExecutor
from promptopt.search._loop import count_trials, search_loop
from promptopt.search._plan import RunOptions, RunPlan, plan_run
from promptopt.search._prepare import (
    DIRECTIONS,
    BuiltSpace,
    begin_run,
    build_space,
    open_run_study,
    queue_start,
    run_key,
    run_space,
)
from promptopt.search._promote import promote_winner
from promptopt.search._results import Candidate, InstructionPool, RunResult
from promptopt.search._run import SearchRun
from promptopt.search._study import (
    GUIDED_STARTS,
    SAMPLERS,
    STARTS,
    make_sampler,
    open_study,
    optuna_storage_url,
    recover_interrupted,
    resolve_sampler,
    trial_config,
)
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome, TrialStatus, failed_outcome, run_trial
from promptopt.search._verdict import Lift, Verdict, give_verdict, paired_lift

__all__ = [
    "InstructionPool",
    "EvolvePlan",
    "FineTuneTrained",
    "InstructionsEvolved",
    "DIRECTIONS",
    "SAMPLERS",
    "BuiltSpace",
    "Candidate",
    "Lift",
    "LocalExecutor",
    "OnEvent",
    "PrePass",
    "PrepassStarted",
    "PromotionDecided",
    "RunEvent",
    "RunOptions",
    "RunPlan",
    "RunResult",
    "RunStarted",
    "SearchRun",
    "SpaceBuilt",
    "StopReason",
    "TestEvalStarted",
    "TrialContext",
    "TrialExecutor",
    "TrialFinished",
    "TrialJob",
    "TrialOutcome",
    "TrialStatus",
    "TrialsRecovered",
    "Verdict",
    "begin_run",
    "build_space",
    "count_trials",
    "estimate_run",
    "failed_outcome",
    "give_verdict",
    "make_sampler",
    "GUIDED_STARTS",
    "STARTS",
    "open_run_study",
    "open_study",
    "optuna_storage_url",
    "paired_lift",
    "plan_run",
    "promote_winner",
    "queue_start",
    "recover_interrupted",
    "resolve_sampler",
    "trial_config",
    "run_key",
    "run_space",
    "run_trial",
    "search_loop",
]
