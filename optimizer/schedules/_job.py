"""One scheduled job: fresh logs with feedback -> dataset file -> derived spec -> warm-started search with
gated promotion -> drift check. A run that fails, or is not significantly better, never moves a label."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from promptopt.cache import ResponseCache
from promptopt.config import PromptConfig
from promptopt.engine import Services
from promptopt.errors import InputError, NotFound
from promptopt.logs import LogQuery, dataset_from_logs, dataset_hash, write_jsonl
from promptopt.models import ModelBackend
from promptopt.registry import PromptVersion, Registry
from promptopt.schedules._drift import check_drift
from promptopt.schedules._events import DriftDetected, JobResumed, OnScheduleEvent, SearchProgress, WarmStarted, ignore
from promptopt.schedules._values import DriftAlert, Schedule, ScheduleRun
from promptopt.schedules._warm import derive_spec, prepare_warm_start, previous_best
from promptopt.search import RunOptions, RunResult, SearchRun
from promptopt.spec import LoadedSpec, load_spec
from promptopt.store import Store
from promptopt.validate import load_and_check


@dataclass(frozen=True)
class JobOutcome:
    status: str  # "finished" or "skipped"
    run_id: str | None = None
    dataset_file: str | None = None
    dataset_hash: str | None = None
    cases: int | None = None
    promotion: dict[str, Any] | None = None
    drift: DriftAlert | None = None
    message: str | None = None


@dataclass
class Job:
    """Everything one run of a schedule needs; :meth:`run` does it."""

    store: Store
    schedule: Schedule
    backend: ModelBackend
    cache: ResponseCache
    work_dir: Path
    now: datetime
    resume: ScheduleRun | None = None
    on_event: OnScheduleEvent = ignore
    on_dataset: Callable[[str, str, int], None] = lambda path, digest, cases: None

    async def run(self) -> JobOutcome:
        loaded = load_spec(self.schedule.spec_path)
        if loaded.spec.task.name != self.schedule.prompt:
            raise InputError(
                str(loaded.path),
                "task.name",
                f"is {loaded.spec.task.name!r}, but the schedule was "
                f"added for {self.schedule.prompt!r}; add a new schedule for the renamed prompt",
            )
        data = self._dataset(loaded)
        if isinstance(data, JobOutcome):
            return data
        path, digest, cases = data
        self.on_dataset(str(path), digest, cases)
        production = self._production(loaded)
        # A code task's production bundle does not rebase the search yet: its run starts from the spec as written.
        start = production.config if production is not None and isinstance(production.config, PromptConfig) else None
        derived = derive_spec(loaded, path, start, work_dir=self.work_dir)
        dataset = load_and_check(derived)
        name = self.schedule.name
        search = SearchRun(
            loaded=derived,
            dataset=dataset,
            options=self._options(),
            on_event=lambda event: self.on_event(SearchProgress(name, event)),
            services=Services(backend=self.backend, cache=self.cache, records=self.store),
        )
        previous = previous_best(self.store, self.schedule.last_run_id, self.schedule.settings.warm_start)
        warm = await prepare_warm_start(search, production=start, previous=previous)
        self.on_event(WarmStarted(name, warm))
        result: RunResult = await search.run()
        drift = check_drift(
            self.store, production, loaded.spec.registry.label, result, seed=self.schedule.settings.seed
        )
        if drift is not None:
            self.on_event(DriftDetected(name, drift))
        return JobOutcome(
            status="finished",
            run_id=result.run_id,
            dataset_file=str(path),
            dataset_hash=digest,
            cases=cases,
            drift=drift,
            promotion=None if result.promotion is None else result.promotion.model_dump(mode="json"),
            message=None if result.promotion is None else result.promotion.reason,
        )

    def _dataset(self, loaded: LoadedSpec) -> tuple[Path, str, int] | JobOutcome:
        """The logs file of this run: the one a taken-over run was using (so its search run resumes), else
        the fresh logs with a reference, written once under their content hash."""
        if self.resume is not None and self.resume.dataset_file and Path(self.resume.dataset_file).is_file():
            self.on_event(JobResumed(self.schedule.name, self.resume.dataset_file))
            return Path(self.resume.dataset_file), self.resume.dataset_hash or "", self.resume.cases or 0
        settings = self.schedule.settings
        since = None if settings.window_s is None else self.now - timedelta(seconds=settings.window_s)
        records = dataset_from_logs(
            self.store,
            LogQuery(prompt=self.schedule.prompt, since=since, until=self.now, with_feedback=True),
            require_expected=True,
        )
        labels = loaded.spec.task.output.labels
        if labels is not None:  # feedback outside the label set cannot be scored as a label task
            records = [r for r in records if str(r["expected"]) in labels]
        if len(records) < settings.min_cases:
            return JobOutcome(
                status="skipped",
                cases=len(records),
                message=f"{len(records)} log(s) with a reference in their feedback; the schedule "
                f"needs at least {settings.min_cases}",
            )
        digest = dataset_hash(records)
        path = self.work_dir / f"logs-{digest[:16]}.jsonl"
        write_jsonl(records, path)
        return path, digest, len(records)

    def _production(self, loaded: LoadedSpec) -> PromptVersion | None:
        try:
            return Registry(self.store).get(loaded.spec.task.name, label=loaded.spec.registry.label)
        except NotFound:
            return None  # a prompt nobody promoted yet: the spec as written is the baseline

    def _options(self) -> RunOptions:
        s = self.schedule.settings
        return RunOptions(
            sampler=s.sampler,
            seed=s.seed,
            top_k=s.top_k,
            max_trials=s.max_trials,
            promote=True,
            who=f"schedule {self.schedule.name}",
        )
