"""16 processes, each with its own Store, register and promote at once: versions stay 1..N without gaps or
duplicates, and every label ends at exactly one version with an unbroken audit chain."""

from __future__ import annotations

import multiprocessing

import pytest

from promptopt.registry import Registry
from promptopt.store import Store
from tests.registry._workers import register_and_promote

PROCESSES = 16


@pytest.fixture(scope="module")
def context() -> multiprocessing.context.BaseContext:
    # forkserver: children fork from a clean process that has already imported promptopt (fast, and no
    # threads of the test process are copied into them).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["promptopt.registry", "tests.registry._workers"])
    return ctx


def test_concurrent_register_and_promote(store_url: str, store: Store, context) -> None:
    start, results = context.Barrier(PROCESSES), context.Queue()
    procs = [
        context.Process(target=register_and_promote, args=(store_url, i, start, results)) for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:  # the results are a few bytes each: they fit the queue's pipe before anyone reads it
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    outcomes = [results.get(timeout=10) for _ in procs]

    registry = Registry(store)
    versions = [v.version for v in registry.versions("shared")]
    assert versions == list(range(1, PROCESSES + 2))  # 16 own contents + 1 shared one: gap-free, unique
    assert all(created for _, _, created, _ in outcomes)
    assert sorted([mine for _, mine, _, _ in outcomes] + [outcomes[0][3]]) == versions
    assert len({common for *_, common in outcomes}) == 1  # the same content got one version
    labels = registry.labels("shared")
    assert set(labels) == {"production", "staging"}
    for label, version in labels.items():
        chain = registry.history("shared", label=label)
        assert len(chain) == PROCESSES
        assert chain[0].from_version is None
        assert all(later.from_version == earlier.to_version for earlier, later in zip(chain, chain[1:], strict=False))
        assert chain[-1].to_version == version  # no lost update: the label is where the last entry put it
