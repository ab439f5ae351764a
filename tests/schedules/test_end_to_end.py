"""An application logs its calls through the SDK (with feedback), a scheduler tick re-optimizes the prompt on
those logs (warm started from the production version) and promotes the winner through the registry's gate,
and the application's SDK then serves the new version. On SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

from promptopt.cache import DiskResponseCache
from promptopt.config import PromptConfig
from promptopt.logs import LogQuery, LogStore
from promptopt.registry import Registry
from promptopt.schedules import DriftDetected, ScheduleEvent, Scheduler, Schedules, ScheduleSettings, SearchProgress
from promptopt.sdk import Prompt, PromptClient
from promptopt.sdk._logger import PromptLogger
from promptopt.search import TrialFinished
from promptopt.store import Store
from tests.schedules.helpers import EXPERT, PROMPT, TOKEN, app_traffic, backend, register_production, served, write_spec


def _lookup_until(prompts: PromptClient, *, version: int, timeout_s: float = 10.0) -> Prompt:
    deadline = time.monotonic() + timeout_s
    while True:
        prompt = prompts.get(PROMPT)
        if prompt.version == version or time.monotonic() > deadline:
            assert prompt.version == version
            return prompt
        time.sleep(0.02)


def test_logs_with_feedback_re_optimize_promote_and_serve(store: Store, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    register_production(store, spec, test_score=0.95)
    schedules = Schedules(store)
    schedules.add(
        "nightly",
        str(spec),
        prompt=PROMPT,
        every_s=3600,
        min_new_feedback=40,
        settings=ScheduleSettings(sampler="grid", max_trials=3, min_cases=20),
    )
    fake = backend()
    events: list[ScheduleEvent] = []
    scheduler = Scheduler(
        store,
        backend=fake,
        cache=DiskResponseCache(str(tmp_path / "cache")),
        work_dir=tmp_path / "work",
        lease_s=30,
        on_event=events.append,
    )

    with served(store) as url, PromptClient(url, cache_dir=False, ttl_s=0) as prompts:
        with PromptLogger(url, token=TOKEN, spool_dir=tmp_path / "spool", flush_interval_s=0.05) as logger:
            app_traffic(prompts, logger, range(0, 30))
            assert logger.flush()
            assert scheduler.tick() == []  # 30 new feedback entries: not enough yet
            app_traffic(prompts, logger, range(30, 60))
            assert logger.flush() and logger.stats.rejected == 0
        assert len(LogStore(store).query(LogQuery(prompt=PROMPT, with_feedback=True))) == 60

        [report] = scheduler.tick()
        assert report.status == "finished", report.message
        assert report.promoted is True and report.promotion["incumbent_version"] == 1
        # Trial 0 was the production version (v1), evaluated first on the fresh logs.
        run = store.get_run(report.run_id)
        assert run.result["baseline"]["trial"] == 0
        assert (
            PromptConfig.model_validate(run.result["baseline"]["config"]).hash
            == Registry(store).get(PROMPT, version=1).config_hash
        )
        assert run.result["baseline"]["config"]["messages"][0]["content"] == "Label it."
        assert EXPERT in run.result["best"]["config"]["messages"][0]["content"]
        # The model saw the logged inputs (what crossed the boundary), not the offline dataset.
        assert {r.messages[-1]["content"] for r in fake.calls} <= {f"review number {i}" for i in range(60)}
        # v1 was registered with a test score of 0.95 but gets about a quarter right on fresh logs: drift.
        assert report.drift is not None and report.drift.version == 1 and report.drift.ci95[1] < 0.95
        assert any(isinstance(e, DriftDetected) and e.schedule == "nightly" for e in events)
        assert any(isinstance(e, SearchProgress) and isinstance(e.event, TrialFinished) for e in events)

        served_now = _lookup_until(prompts, version=2)  # ttl 0: the next lookup revalidates in the background
        assert served_now.config.instruction == EXPERT

    [entry] = schedules.history("nightly")
    assert entry.status == "finished" and entry.promoted and entry.cases == 60 and entry.new_feedback == 60
    assert entry.drift is not None and Path(entry.dataset_file).is_file()
    schedule = schedules.get("nightly")
    assert schedule.last_status == "finished" and schedule.lease_owner is None and schedule.last_run_id == run.id
    assert scheduler.tick() == []  # ran a moment ago: not due before every_s
    assert [e.kind for e in Registry(store).history(PROMPT, label="production")] == ["set", "promote"]
