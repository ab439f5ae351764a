"""Schedules in the store: management, the lease contract (one claimer per state, across stores), due-ness,
a run that loses its lease stops, a failed run moves no label, and the `schedule` commands."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from promptopt.errors import InputError, ModelCallError, NotFound
from promptopt.logs import FeedbackIn, LogIn, LogStore
from promptopt.models import ScriptedBackend
from promptopt.registry import Registry
from promptopt.schedules import Scheduler, Schedules, ScheduleSettings
from promptopt.store import ScheduleTable, Store, get_store
from tests.logs.helpers import cli_app
from tests.schedules.helpers import EXPERT, PROMPT, SPEC, answer_for, backend, register_production, truth, write_spec

runner = CliRunner()


def test_add_list_pause_resume_remove(store: Store) -> None:
    schedules = Schedules(store)
    added = schedules.add(
        "nightly",
        "/specs/reviews.yaml",
        prompt=PROMPT,
        every_s=86400,
        min_new_feedback=50,
        settings=ScheduleSettings(top_k=3),
    )
    assert added.settings.top_k == 3 and not added.paused and added.runs == 0 and added.last_run_at is None
    with pytest.raises(InputError, match="exists"):
        schedules.add("nightly", "/specs/other.yaml", prompt=PROMPT, every_s=60)
    with pytest.raises(InputError, match="interval"):
        schedules.add("hourly", "/specs/other.yaml", prompt=PROMPT, every_s=0)
    assert schedules.set_paused("nightly", True).paused and not schedules.set_paused("nightly", False).paused
    assert [s.name for s in schedules.list()] == ["nightly"]
    schedules.remove("nightly")
    assert schedules.list() == []
    with pytest.raises(NotFound, match="no schedule named 'nightly'"):
        schedules.history("nightly")


def test_one_claimer_per_state_across_stores(store_url: str, store: Store) -> None:
    schedule = Schedules(store).add("nightly", "/specs/reviews.yaml", prompt=PROMPT, every_s=60)
    stores = [get_store(store_url) for _ in range(8)]
    start, won = threading.Barrier(len(stores)), []

    def claim(i: int) -> None:
        start.wait(timeout=30)
        if Schedules(stores[i]).claim(schedule, owner=f"s{i}", lease_s=0.5):
            won.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for own in stores:
        own.dispose()
    assert len(won) == 1
    schedules = Schedules(store)
    held = schedules.get("nightly")
    assert held.lease_owner == f"s{won[0]}" and held.runs == 1
    assert not schedules.claim(held, owner="late", lease_s=0.5)  # held
    assert not schedules.claim(schedule, owner="stale", lease_s=0.5)  # read before the claim: runs changed
    time.sleep(0.6)
    assert schedules.claim(held, owner="heir", lease_s=30)  # ran out: taken over
    assert not schedules.renew(schedule.id, owner=f"s{won[0]}", lease_s=30)  # the old owner has lost it
    assert schedules.renew(schedule.id, owner="heir", lease_s=30)
    assert schedules.release(schedule.id, owner="heir", started_at=datetime.now(UTC), status="finished", run_id=None)
    schedules.set_paused("nightly", True)
    assert not schedules.claim(schedules.get("nightly"), owner="any", lease_s=30)  # paused


def test_due_on_the_timer_and_new_feedback(sqlite_url: str) -> None:
    store = get_store(sqlite_url)
    schedules, logs = Schedules(store), LogStore(store)
    schedules.add("nightly", "/specs/reviews.yaml", prompt=PROMPT, every_s=3600, min_new_feedback=2)
    scheduler = Scheduler(store, backend=backend(), lease_s=30)
    assert scheduler.due() == []
    logs.add_logs([LogIn(id=f"log-{i}", prompt=PROMPT, input={"text": "x"}) for i in range(3)])
    logs.add_feedback([FeedbackIn(log_id="log-0", score=1), FeedbackIn(log_id="log-1", score=0)])
    assert [s.name for s in scheduler.due()] == ["nightly"]
    schedule = schedules.get("nightly")
    assert schedules.claim(schedule, owner="x", lease_s=30)
    assert scheduler.due() == []  # running
    ran_at = datetime.now(UTC)
    schedules.release(schedule.id, owner="x", started_at=ran_at, status="finished", run_id=None)
    assert scheduler.due() == []  # ran now: the timer holds it
    assert scheduler.due(now=ran_at + timedelta(hours=2)) == []  # and no new feedback since
    logs.add_feedback([FeedbackIn(log_id="log-2", score=1), FeedbackIn(log_id="log-0", label="positive")])
    assert [s.name for s in scheduler.due(now=ran_at + timedelta(hours=2))] == ["nightly"]
    store.dispose()


def _seed(store: Store, tmp_path: Path, **settings) -> Path:
    spec = write_spec(tmp_path / "spec")
    register_production(store, spec)
    logs = LogStore(store)
    logs.add_logs(
        [LogIn(id=f"log-{i}", prompt=PROMPT, version=1, input={"text": f"review number {i}"}) for i in range(60)]
    )
    logs.add_feedback([FeedbackIn(log_id=f"log-{i}", label=truth(i)) for i in range(60)])
    Schedules(store).add(
        "nightly",
        str(spec),
        prompt=PROMPT,
        every_s=3600,
        settings=ScheduleSettings(sampler="grid", max_trials=3, min_cases=20, **settings),
    )
    return spec


def test_a_run_that_loses_its_lease_stops_and_leaves_the_job_to_the_new_owner(sqlite_url: str, tmp_path: Path) -> None:
    store = get_store(sqlite_url)
    _seed(store, tmp_path)
    scheduler = Scheduler(
        store, backend=backend(0.2), cache=_null_cache(), work_dir=tmp_path / "work", lease_s=0.6, owner="slow"
    )
    schedules, reports = Schedules(store), []
    worker = threading.Thread(target=lambda: reports.extend(scheduler.tick()))
    worker.start()
    deadline = time.monotonic() + 30
    while not (schedules.history("nightly") and schedules.history("nightly")[0].run_id):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with store.engine.begin() as connection:  # another scheduler took the job over (as if "slow" had stalled)
        connection.execute(update(ScheduleTable).values(lease_owner="thief"))
    worker.join(timeout=30)
    [report] = reports
    assert report.status == "lost_lease" and "thief" not in (report.message or "")
    assert schedules.get("nightly").lease_owner == "thief"  # the new owner's lease is left alone
    assert schedules.history("nightly")[0].status == "lost_lease"
    assert [e.kind for e in Registry(store).history(PROMPT)] == ["set"]  # the stopped run moved no label
    store.dispose()


def _null_cache():
    from promptopt.cache import NullCache

    return NullCache()


def test_a_failed_run_is_recorded_and_moves_no_label(sqlite_url: str, tmp_path: Path) -> None:
    store = get_store(sqlite_url)
    _seed(store, tmp_path)
    down = ScriptedBackend(lambda request: ModelCallError("provider down", retryable=False, status=400))
    [report] = Scheduler(store, backend=down, cache=_null_cache(), work_dir=tmp_path / "work").tick()
    assert report.status == "failed" and "no trial completed" in report.message
    assert store.get_run(report.run_id).status == "failed"
    schedule = Schedules(store).get("nightly")
    assert schedule.last_status == "failed" and schedule.lease_owner is None and schedule.last_run_at is not None
    assert [e.kind for e in Registry(store).history(PROMPT)] == ["set"]
    store.dispose()


def test_too_few_labelled_logs_skip_the_run(sqlite_url: str, tmp_path: Path) -> None:
    store = get_store(sqlite_url)
    _seed(store, tmp_path, window_s=1)  # only the logs of the last second: none
    time.sleep(1.1)
    [report] = Scheduler(store, backend=backend(), cache=_null_cache(), work_dir=tmp_path / "work").tick()
    assert report.status == "skipped" and "needs at least 20" in report.message
    assert Schedules(store).history("nightly")[0].cases == 0
    store.dispose()


def test_the_schedule_commands(store: Store, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    app, url = cli_app(), str(store.url)
    added = runner.invoke(
        app,
        [
            "schedule",
            "add",
            str(spec),
            "--every",
            "6h",
            "--min-new-feedback",
            "40",
            "--sampler",
            "grid",
            "--max-trials",
            "3",
            "--min-cases",
            "20",
            "--store",
            url,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "schedule reviews: reviews every 6h once 40 new feedback entries arrived" in added.output
    listed = runner.invoke(app, ["schedule", "list", "--store", url, "--json"])
    [entry] = json.loads(listed.output)
    assert entry["every_s"] == 21600 and entry["settings"]["max_trials"] == 3 and entry["spec_path"] == str(spec)
    assert runner.invoke(app, ["schedule", "pause", "reviews", "--store", url]).exit_code == 0
    assert "paused" in runner.invoke(app, ["schedule", "list", "--store", url]).output
    assert runner.invoke(app, ["schedule", "resume", "reviews", "--store", url]).exit_code == 0

    bad = runner.invoke(app, ["schedule", "add", str(spec), "--name", "x", "--every", "soon", "--store", url])
    assert bad.exit_code == 2 and "--every" in bad.output
    dup = runner.invoke(app, ["schedule", "add", str(spec), "--store", url])
    assert dup.exit_code == 2 and "exists" in dup.output
    bad_sampler = runner.invoke(app, ["schedule", "add", str(spec), "--name", "y", "--sampler", "nope", "--store", url])
    assert bad_sampler.exit_code == 2 and "sampler" in bad_sampler.output
    assert [s.name for s in Schedules(store).list()] == ["reviews"]  # bad input wrote nothing

    idle = runner.invoke(app, ["schedule", "tick", "--store", url, "--no-cache", "--work-dir", str(tmp_path / "w")])
    assert idle.exit_code == 0 and "no schedule is due" in idle.output
    history = runner.invoke(app, ["schedule", "history", "reviews", "--store", url])
    assert history.exit_code == 0 and "0 run(s)" in history.output
    assert runner.invoke(app, ["schedule", "remove", "reviews", "--store", url]).exit_code == 0
    assert runner.invoke(app, ["schedule", "history", "reviews", "--store", url]).exit_code == 1


def test_schedule_tick_runs_a_due_job_with_the_default_backend(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptopt.testing import FakeOpenAIServer

    def answer(messages: list[dict]) -> str:
        i = int(str(messages[-1]["content"]).split()[-1])
        return answer_for(i, expert=EXPERT in str(messages[0]["content"]))

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    store = get_store(sqlite_url)
    with FakeOpenAIServer(answer=answer) as model:
        task = {**SPEC["task"], "model": "openai/fake", "params": {"max_tokens": 8, "extra": {"api_base": model.url}}}
        spec = write_spec(tmp_path / "spec", task=task)
        register_production(store, spec, test_score=None)
        logs = LogStore(store)
        logs.add_logs(
            [LogIn(id=f"log-{i}", prompt=PROMPT, version=1, input={"text": f"review number {i}"}) for i in range(40)]
        )
        logs.add_feedback([FeedbackIn(log_id=f"log-{i}", label=truth(i)) for i in range(40)])
        app = cli_app()
        added = runner.invoke(
            app,
            [
                "schedule",
                "add",
                str(spec),
                "--name",
                "nightly",
                "--every",
                "1d",
                "--sampler",
                "grid",
                "--max-trials",
                "3",
                "--min-cases",
                "20",
                "--store",
                sqlite_url,
            ],
        )
        assert added.exit_code == 0, added.output
        ran = runner.invoke(
            app, ["schedule", "tick", "--store", sqlite_url, "--no-cache", "--work-dir", str(tmp_path / "work")]
        )
        assert ran.exit_code == 0, ran.output
        assert "nightly: finished" in ran.output and "v2 promoted to 'production'" in ran.output
        assert model.requests > 0
    assert Registry(store).get(PROMPT, label="production").config.instruction == EXPERT
    history = runner.invoke(app, ["schedule", "history", "nightly", "--store", sqlite_url, "--json"])
    [entry] = json.loads(history.output)
    assert entry["status"] == "finished" and entry["promoted"] and entry["cases"] == 40
    store.dispose()


_DAEMON = """
import sys
from tests.logs.helpers import cli_app
cli_app()(["scheduler", "--poll-s", "0.1", "--store", sys.argv[1], "--no-cache", "--work-dir", sys.argv[2]])
"""


def test_the_scheduler_daemon_polls_until_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    daemon = subprocess.Popen(
        [sys.executable, "-c", _DAEMON, sqlite_url, str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        first = daemon.stderr.readline()
        assert "polling every 0.1 s" in first, first
        time.sleep(0.5)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 130
        assert "stopped" in daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
