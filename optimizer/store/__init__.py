"""Records of evals: experiments and their rows, in SQLite or PostgreSQL, built from a URL.

``get_store()`` opens ``$OPTIMIZE_STORE``, else ``sqlite:///<cwd>/.optimize/optimize.db``; an eval calls
``begin_experiment`` (which resumes a killed one), ``add_rows`` as rows finish, then ``finish_experiment``.
"""

from promptopt.store._engine import insert_ignoring_duplicates, lock, writer
from promptopt.store._log_tables import LogFeedbackTable, LogScoreTable, PromptLogTable
from promptopt.store._migrate import StoreSchemaError
from promptopt.store._records import ExperimentRecord, ExperimentStatus, utc
from promptopt.store._registry_tables import (
    AdapterTable,
    PromptLabelEventTable,
    PromptLabelTable,
    PromptVersionTable,
)
from promptopt.store._run_tables import RunTable
from promptopt.store._runs import RunRecord
from promptopt.store._schedule_tables import ScheduleRunTable, ScheduleTable
from promptopt.store._store import Store, get_store
from promptopt.store._url import ENV_VAR, StoreUrl

__all__ = [
    "ENV_VAR",
    "ExperimentRecord",
    "ExperimentStatus",
    "RunRecord",
    "RunTable",
    "Store",
    "StoreSchemaError",
    "StoreUrl",
    "get_store",
]
# The tables of the other packages: one schema and one migration history here, and each table written by exactly
# one package (tests/store/test_table_owners.py): prompt_log, log_feedback, log_score by promptopt.logs;
# prompt_version, prompt_label, prompt_label_event, adapter by promptopt.registry; schedule, schedule_run by
# promptopt.schedules. The owners write them with writer, lock and insert_ignoring_duplicates, which make
# concurrent writers safe on both backends.
__all__ += [
    "AdapterTable",
    "LogFeedbackTable",
    "LogScoreTable",
    "PromptLabelEventTable",
    "PromptLabelTable",
    "PromptLogTable",
    "PromptVersionTable",
    "ScheduleRunTable",
    "ScheduleTable",
    "insert_ignoring_duplicates",
    "lock",
    "utc",
    "writer",
]
