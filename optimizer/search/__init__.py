"""The optimizer: an Optuna study over the search space, trials as full evals, a held-out verdict."""

from promptopt.search._executor import LocalExecutor, TrialExecutor
from promptopt.search._run import Candidate, RunOptions, RunResult, SearchRun, count_trials, run_key
from promptopt.search._study import SAMPLERS, make_sampler, open_study, optuna_storage_url, recover_interrupted
from promptopt.search._trial import TrialContext, TrialJob, TrialOutcome, run_trial
from promptopt.search._verdict import Lift, paired_lift

__all__ = ["SAMPLERS", "Candidate", "Lift", "LocalExecutor", "RunOptions", "RunResult", "SearchRun",
           "TrialContext", "TrialExecutor", "TrialJob", "TrialOutcome", "count_trials", "make_sampler",
           "open_study", "optuna_storage_url", "paired_lift", "recover_interrupted", "run_key", "run_trial"]
