"""Benchmark production-log ingestion, side by side in one run, on SQLite and on PostgreSQL.

(a) HTTP bulk: ``POST /v1/logs:bulk`` against ``optimize serve``'s app (registry + logs routes) under uvicorn
    (one worker, a subprocess) on loopback; 4 client connections post batches of 100 logs (and, for scale,
    batches of 1). Logs per second stored, each batch committed before the answer.
(b) SDK end to end: ``PromptLogger.log`` as fast as one application thread can call it, until ``flush``
    says everything reached the store: through the same server over HTTP, and straight into the store.
    Also the cost of one ``log`` call in the application's thread (scrub, queue).

Every log carries a realistic input (a ~300-character ticket), output and metadata; the default scrub runs in
the SDK and again on the server. Usage:

    .venv/bin/python experiments/bench_logs.py            # 40k logs per HTTP run, 20k per SDK run
    .venv/bin/python experiments/bench_logs.py --quick    # a smoke run (tests/logs/test_bench.py)
    .venv/bin/python experiments/bench_logs.py --pg ""    # SQLite only

Writes ``<results-dir>/logs.json`` (default ``experiments/results``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine

from promptopt.logs import LogQuery, LogStore
from promptopt.sdk._logger import PromptLogger
from promptopt.store import get_store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_results import RESULTS_DIR, header, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PG = "postgresql://postgres@127.0.0.1:5432/test"
_SERVER = """
import sys, uvicorn
from promptopt.logs._routes import logs_router
from promptopt.server import create_app
from promptopt.store import get_store
store = get_store(sys.argv[1])
uvicorn.run(create_app(store, token=sys.argv[3], routers=[logs_router(store)]), host="127.0.0.1",
            port=int(sys.argv[2]), log_level="warning", access_log=False)
"""
TICKET = (
    "Hello, I was charged twice for my subscription this month (invoice 2026-11-0042) and the second charge "
    "still shows as pending on my card. Could you refund it and confirm that my plan stays on the annual "
    "billing cycle? I also could not download the receipt from the billing page; it times out. Thanks, Sam"
)


def log_body(i: int, run: str) -> dict[str, Any]:
    return {
        "id": f"{run}-{i}",
        "prompt": "support-triage",
        "version": 3,
        "label": "production",
        "input": {"ticket": TICKET, "customer_tier": "pro"},
        "output": "billing",
        "model": "gpt-4o-mini",
        "latency_s": 0.412,
        "tokens": 187,
        "cost_usd": 0.000041,
        "metadata": {"request_id": f"req-{i}", "region": "eu-west-1", "app_version": "4.2.0"},
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(store_url: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, store_url, str(port), TOKEN])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/prompts", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _post_all(base: str, bodies: list[bytes], connections: int) -> None:
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(
        base_url=base,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=60,
        limits=httpx.Limits(max_connections=connections),
    ) as client:

        async def worker() -> None:
            while queue:
                response = await client.post("/v1/logs:bulk", content=queue.pop())
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(connections)))


def http_bulk(base: str, logs: int, batch: int, connections: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    items = [log_body(i, run) for i in range(logs)]
    bodies = [json.dumps({"logs": items[i : i + batch]}).encode() for i in range(0, logs, batch)]
    asyncio.run(_post_all(base, bodies[:2], 1))  # warm-up (connections, first inserts); counted in the store
    started = time.perf_counter()
    asyncio.run(_post_all(base, bodies[2:], connections))
    wall = time.perf_counter() - started
    sent = logs - sum(len(json.loads(b)["logs"]) for b in bodies[:2])
    return {
        "logs": sent,
        "batch": batch,
        "connections": connections,
        "wall_s": wall,
        "logs_per_s": sent / wall,
        "requests_per_s": (len(bodies) - 2) / wall,
    }


def sdk_end_to_end(destination: Any, logs: int, spool: Path, **options: Any) -> dict[str, Any]:
    """One application thread logs ``logs`` calls as fast as it can; timed until flush() confirms delivery."""
    logger = PromptLogger(destination, spool_dir=spool, max_queue=logs + 1000, **options)
    calls = []
    started = time.perf_counter()
    for i in range(logs):
        t0 = time.perf_counter()
        logger.log(
            "support-triage",
            3,
            {"ticket": TICKET, "customer_tier": "pro"},
            "billing",
            model="gpt-4o-mini",
            latency_s=0.412,
            tokens=187,
            cost_usd=0.000041,
            label="production",
            metadata={"request_id": f"req-{i}", "region": "eu-west-1", "app_version": "4.2.0"},
        )
        calls.append(time.perf_counter() - t0)
    logged = time.perf_counter() - started
    delivered = logger.flush(timeout_s=600)
    wall = time.perf_counter() - started
    stats = logger.stats
    logger.close()
    calls.sort()
    return {
        "logs": logs,
        "delivered": delivered,
        "wall_s": wall,
        "logs_per_s": logs / wall,
        "app_thread_s": logged,
        "log_call_median_us": statistics.median(calls) * 1e6,
        "log_call_p99_us": calls[int(len(calls) * 0.99)] * 1e6,
        "sent": stats.sent,
        "dropped": stats.dropped,
        "spooled": stats.spooled,
        "rejected": stats.rejected,
        "batch_size": logger.batch_size,
    }


def fresh_pg(url: str) -> tuple[str, str]:
    schema = f"bench_logs_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url.replace("postgresql", "postgresql+psycopg", 1))
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    return f"{url}?options=-csearch_path%3D{schema}", schema


def drop_pg(url: str, schema: str) -> None:
    engine = create_engine(url.replace("postgresql", "postgresql+psycopg", 1))
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def bench_backend(store_url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    get_store(store_url).dispose()  # migrate once, before the server and the clients race to
    out: dict[str, Any] = {}
    with server(store_url) as base:
        out["http_bulk_100"] = http_bulk(base, args.logs, 100, 4)
        out["http_bulk_1"] = http_bulk(base, max(100, args.logs // 20), 1, 4)
        out["sdk_over_http"] = sdk_end_to_end(base, args.sdk_logs, tmp / "spool-http", token=TOKEN)
    store = get_store(store_url)
    try:
        out["sdk_into_store"] = sdk_end_to_end(store, args.sdk_logs, tmp / "spool-store")
        out["stored"] = len(LogStore(store).query(LogQuery(prompt="support-triage")))
    finally:
        store.dispose()
    return out


def table(results: dict[str, Any]) -> str:
    backends = list(results["backends"])
    rows = ["| measure | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    measures = [
        ("http_bulk_100", "HTTP bulk, batches of 100, 4 connections"),
        ("http_bulk_1", "HTTP bulk, batches of 1, 4 connections"),
        ("sdk_over_http", "SDK `PromptLogger` -> HTTP server, end to end"),
        ("sdk_into_store", "SDK `PromptLogger` -> store directly, end to end"),
    ]
    for key, label in measures:
        cells = [f"{results['backends'][b][key]['logs_per_s']:,.0f} logs/s" for b in backends]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [
        f"{results['backends'][b]['sdk_over_http']['log_call_median_us']:.1f} µs "
        f"(p99 {results['backends'][b]['sdk_over_http']['log_call_p99_us']:.1f} µs)"
        for b in backends
    ]
    rows.append("| `log()` call in the application thread (median) | " + " | ".join(cells) + " |")
    first = results["backends"][backends[0]]
    ratio = first["http_bulk_100"]["logs_per_s"] / first["http_bulk_1"]["logs_per_s"]
    lost = {
        b: sum(
            results["backends"][b][k]["dropped"] + results["backends"][b][k]["rejected"]
            for k in ("sdk_over_http", "sdk_into_store")
        )
        for b in backends
    }
    rows.append(
        f"\nBatches of 100 store {ratio:,.0f}x more logs per second than single-log requests "
        f"({backends[0]}). Server (one uvicorn worker), clients and database share "
        f"{results['machine']['cpu_count']} cores ({results['machine']['cpu']}). Logs dropped or refused "
        f"by the SDK runs: " + ", ".join(f"{b} {n}" for b, n in lost.items()) + "."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=40_000, help="Logs per HTTP bulk run.")
    parser.add_argument("--sdk-logs", type=int, default=20_000, help="Logs per SDK run.")
    parser.add_argument(
        "--pg", default=PG, help="PostgreSQL database URL (a scratch schema is made and dropped); empty: SQLite only."
    )
    parser.add_argument("--quick", action="store_true", help="1k logs per run (a smoke run, not a measurement).")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    if args.quick:
        args.logs, args.sdk_logs = 1_000, 1_000
    results: dict[str, Any] = {
        **header(script="bench_logs.py", versions=("fastapi", "uvicorn", "sqlalchemy", "httpx", "psycopg")),
        "quick": args.quick,
        "logs_per_http_run": args.logs,
        "logs_per_sdk_run": args.sdk_logs,
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["backends"]["SQLite"] = bench_backend(f"sqlite:///{Path(tmp) / 'logs.db'}", args, Path(tmp) / "s")
        if args.pg:
            url, schema = fresh_pg(args.pg)
            try:
                results["backends"]["PostgreSQL"] = bench_backend(url, args, Path(tmp) / "p")
            finally:
                drop_pg(args.pg, schema)
    results["markdown"] = table(results)
    out = args.results_dir / "logs.json"
    write_result(results, out)
    print(results["markdown"])
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
