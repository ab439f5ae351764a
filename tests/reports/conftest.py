import pytest

from promptopt.reports import build_run_report
from tests.reports.helpers import make_run


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """One real finished run (made once: a few seconds) with its store and report."""
    tmp = tmp_path_factory.mktemp("finished-run")
    result, store = make_run(tmp)
    return result, store, build_run_report(store, result.run_id)
