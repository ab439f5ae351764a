"""Online scores: reference-free scorers run on a seeded sample of new production logs."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from promptopt.errors import InputError, NotFound
from promptopt.logs._store import LogStore
from promptopt.logs._values import LogEntry, LogQuery, ScoreReport
from promptopt.scorers import ScoreInput, Scorer
from promptopt.secrets import scrub_secrets
from promptopt.store import Store


def in_sample(log_id: str, *, rate: float, seed: int) -> bool:
    """Whether a log belongs to the seeded sample: a function of (seed, id) only, so a log left out once is
    left out every time, and the sample does not depend on how logs were batched."""
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(f"{seed}:{log_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def score_logs(
    store: Store,
    prompt: str,
    *,
    scorers: Sequence[Scorer],
    sample_rate: float,
    seed: int = 0,
    since: datetime | None = None,
    concurrency: int = 8,
) -> ScoreReport:
    """Score the sampled logs of ``prompt`` that some of ``scorers`` have not scored yet, and record it.

    Only scorers that need no expected value (``needs_expected`` false: regex, json_valid, llm_judge) can
    score production logs. Outputs are parsed with the output spec of the version that produced them (as an
    eval would) when that version is in the registry. A scorer that fails is recorded as an error on that
    log, never as a low score. Running it again scores only what is new, so a cron job can call it.

    Example:
        >>> scorers = build_scorers(spec.scorers[1:], base_dir=Path("."), backend=None)  # doctest: +SKIP
        >>> score_logs(get_store(), "support-triage", scorers=scorers, sample_rate=0.1, seed=0)  # doctest: +SKIP

    Raises:
        InputError: a scorer needs an expected value, or ``sample_rate`` is not in (0, 1].
    """
    return asyncio.run(
        ascore_logs(
            store, prompt, scorers=scorers, sample_rate=sample_rate, seed=seed, since=since, concurrency=concurrency
        )
    )


async def ascore_logs(
    store: Store,
    prompt: str,
    *,
    scorers: Sequence[Scorer],
    sample_rate: float,
    seed: int = 0,
    since: datetime | None = None,
    concurrency: int = 8,
) -> ScoreReport:
    """:func:`score_logs` for callers inside an event loop."""
    _check(scorers, sample_rate)
    logs = LogStore(store)
    names = [s.name for s in scorers]
    done = logs.scored(prompt, names)
    entries = logs.query(LogQuery(prompt=prompt, since=since))
    todo = [e for e in entries if any((e.id, n) not in done for n in names)]
    sampled = [e for e in todo if in_sample(e.id, rate=sample_rate, seed=seed)]
    parsers = _Parsers(store, prompt)
    gate = asyncio.Semaphore(concurrency)

    async def one(entry: LogEntry, scorer: Scorer) -> tuple[str, str, float | None, str | None]:
        async with gate:
            value, error = await _score(scorer, entry, parsers.parse(entry))
        return entry.id, scorer.name, value, error

    rows = await asyncio.gather(*(one(e, s) for e in sampled for s in scorers if (e.id, s.name) not in done))
    logs.add_scores(rows)
    means = {}
    for name in names:
        values = [v for _, n, v, _ in rows if n == name and v is not None]
        means[name] = sum(values) / len(values) if values else None
    return ScoreReport(
        prompt=prompt,
        considered=len(todo),
        sampled=len(sampled),
        recorded=len(rows),
        errors=sum(1 for *_, error in rows if error is not None),
        means=means,
    )


def _check(scorers: Sequence[Scorer], sample_rate: float) -> None:
    needing = [s.name for s in scorers if s.needs_expected]
    if needing:
        raise InputError(
            "score_logs",
            "scorers",
            f"{needing} compare with an expected value, which production logs "
            f"do not have; online scoring takes regex, json_valid and llm_judge scorers",
        )
    if not scorers:
        raise InputError("score_logs", "scorers", "give at least one reference-free scorer")
    if not 0.0 < sample_rate <= 1.0:
        raise InputError("score_logs", "sample_rate", f"a share of the logs in (0, 1], not {sample_rate}")


async def _score(scorer: Scorer, entry: LogEntry, parsed: Any) -> tuple[float | None, str | None]:
    row = ScoreInput(
        input=entry.input if isinstance(entry.input, dict) else {"input": entry.input},
        output=entry.output or "",
        parsed=parsed,
        metadata=entry.metadata,
    )
    try:
        return (await scorer.score(row)).value, None
    except Exception as exc:  # a failed scorer is an error on the row, never a score of 0
        return None, scrub_secrets(f"{type(exc).__name__}: {exc}")[:2000]


class _Parsers:
    """The output spec of each version of the prompt (looked up once), to parse outputs as an eval does."""

    def __init__(self, store: Store, prompt: str) -> None:
        self._store, self._prompt = store, prompt
        self._specs: dict[int, Any] = {}

    def parse(self, entry: LogEntry) -> Any:
        from promptopt.engine import parse_output

        output = entry.output or ""
        if entry.version is None:
            return output.strip()
        if entry.version not in self._specs:
            from promptopt.registry import Registry

            try:
                found = Registry(self._store).get(self._prompt, version=entry.version)
                self._specs[entry.version] = found.config.output
            except (NotFound, InputError):
                self._specs[entry.version] = None
        spec = self._specs[entry.version]
        return output.strip() if spec is None else parse_output(output, spec)[0]
