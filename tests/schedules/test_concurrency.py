"""Schedulers sharing a store: two started at once run a job once; a scheduler killed mid-job is taken over
once its lease has run out, and the search run it began is continued, not started again."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from promptopt.cache import DiskResponseCache
from promptopt.logs import LogIn, LogStore
from promptopt.logs._values import FeedbackIn
from promptopt.registry import Registry
from promptopt.schedules import JobReport, Scheduler, Schedules, ScheduleSettings
from promptopt.store import Store, get_store
from promptopt.store._run_tables import RunTable
from tests.schedules._workers import tick
from tests.schedules.helpers import PROMPT, answer_for, backend, register_production, truth, write_spec

SETTINGS = ScheduleSettings(sampler="grid", max_trials=3, min_cases=20)


def log_traffic(store: Store, n: int = 60) -> None:
    """``n`` logged calls of production v1, each with the right label as feedback (straight into the store)."""
    logs = LogStore(store)
    logs.add_logs(
        [
            LogIn(
                id=f"log-{i}",
                prompt=PROMPT,
                version=1,
                input={"text": f"review number {i}"},
                output=answer_for(i, expert=False),
            )
            for i in range(n)
        ]
    )
    logs.add_feedback([FeedbackIn(log_id=f"log-{i}", label=truth(i)) for i in range(n)])


@pytest.fixture(scope="module")
def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["promptopt.schedules", "tests.schedules._workers"])
    return ctx


def test_two_schedulers_started_at_once_run_a_job_once(store_url: str, store: Store, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    register_production(store, spec)
    log_traffic(store)
    Schedules(store).add("nightly", str(spec), prompt=PROMPT, every_s=3600, settings=SETTINGS)
    start, reports = threading.Barrier(2), {}

    def scheduler(name: str) -> None:
        own = get_store(store_url)  # a store (engine, connections) of its own, as another process would have
        try:
            runner = Scheduler(
                own,
                backend=backend(0.01),
                cache=DiskResponseCache(str(tmp_path / name)),
                work_dir=tmp_path / "work",
                lease_s=30,
                owner=name,
            )
            start.wait(timeout=30)
            reports[name] = runner.tick()
        finally:
            own.dispose()

    threads = [threading.Thread(target=scheduler, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ran = [r for rs in reports.values() for r in rs]
    assert len(reports) == 2 and len(ran) == 1, reports
    [report] = ran
    assert isinstance(report, JobReport) and report.status == "finished" and report.promoted
    [entry] = Schedules(store).history("nightly")
    assert entry.status == "finished" and entry.owner in ("a", "b")
    with Session(store.engine) as session:
        assert len(session.exec(select(RunTable)).all()) == 1
    assert [e.kind for e in Registry(store).history(PROMPT, label="production")] == ["set", "promote"]


def test_a_scheduler_killed_mid_job_is_taken_over_after_its_lease(
    store_url: str, store: Store, tmp_path: Path, context
) -> None:
    spec = write_spec(tmp_path / "spec")
    register_production(store, spec)
    log_traffic(store)
    schedules = Schedules(store)
    schedules.add("nightly", str(spec), prompt=PROMPT, every_s=3600, settings=SETTINGS)
    lease_s = 1.0
    doomed = context.Process(
        target=tick, args=(store_url, str(tmp_path)), kwargs={"owner": "doomed", "lease_s": lease_s, "latency_s": 0.25}
    )
    doomed.start()
    deadline = time.monotonic() + 60
    while not _search_started(schedules):  # killed once its search run is under way
        assert time.monotonic() < deadline and doomed.is_alive()
        time.sleep(0.05)
    time.sleep(0.3)
    doomed.kill()
    doomed.join(timeout=10)
    began = schedules.history("nightly")[0]

    heir = Scheduler(
        store,
        backend=backend(),
        cache=DiskResponseCache(str(tmp_path / "cache")),
        work_dir=tmp_path / "work",
        lease_s=lease_s,
        owner="heir",
    )
    if schedules.get("nightly").leased(datetime.now(UTC)):
        assert heir.tick() == []  # the dead scheduler's lease still holds: nobody else may run the job
    time.sleep(lease_s + 0.2)
    [report] = heir.tick()
    assert report.status == "finished" and report.promoted, report.message
    assert report.run_id == began.run_id  # the search run the dead scheduler began was continued
    history = schedules.history("nightly")
    assert [(h.owner, h.status) for h in history] == [("heir", "finished"), ("doomed", "abandoned")]
    assert history[0].dataset_file == began.dataset_file
    assert [e.kind for e in Registry(store).history(PROMPT, label="production")] == ["set", "promote"]
    assert schedules.get("nightly").lease_owner is None


def _search_started(schedules: Schedules) -> bool:
    history = schedules.history("nightly")
    return bool(history) and history[0].run_id is not None
