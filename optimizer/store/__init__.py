"""Records of evals: experiments and their rows, in SQLite or PostgreSQL, built from a URL.

``get_store()`` opens ``$OPTIMIZE_STORE``, else ``sqlite:///<cwd>/.optimize/optimize.db``; an eval calls
``begin_experiment`` (which resumes a killed one), ``add_rows`` as rows finish, then ``finish_experiment``.
"""

import promptopt.store._log_tables  # noqa: F401  (registers the tables of logs and schedules)
import promptopt.store._registry_tables  # noqa: F401  (registers the prompt registry's tables)
from promptopt.store._migrate import StoreSchemaError
from promptopt.store._records import ExperimentRecord, ExperimentStatus
from promptopt.store._run_tables import RunTable
from promptopt.store._runs import RunRecord
from promptopt.store._store import Store, get_store
from promptopt.store._url import ENV_VAR, StoreUrl

__all__ = ["ENV_VAR", "ExperimentRecord", "ExperimentStatus", "RunRecord", "RunTable", "Store", "StoreSchemaError",
           "StoreUrl", "get_store"]
