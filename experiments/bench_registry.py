"""Benchmark the prompt registry's read path, side by side in one run.

(a) SDK lookups in process: ``PromptClient.get`` served from its memory cache (the hot path of an
    application), the same plus ``render``, and, for scale, an uncached lookup straight from the store
    (``Registry.get``) and one over HTTP (``HttpSource.fetch``, a loopback round trip).
(b) HTTP lookups per second against ``optimize serve``'s app under uvicorn (one worker, a subprocess) on
    loopback: ``GET /v1/prompts/NAME?label=production`` answered 200 from the store, and the same with
    ``If-None-Match`` answered 304. The load generator is wrk (installed with apt-get if missing and
    possible); otherwise an asyncio httpx loop, which the output says, and whose numbers are lower bounds.

Usage:
    .venv/bin/python experiments/bench_registry.py            # 20k SDK lookups, 10 s per HTTP run
    .venv/bin/python experiments/bench_registry.py --quick

Writes ``experiments/results/registry.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptopt.config import Example, PromptConfig
from promptopt.registry import Lineage, Registry
from promptopt.sdk import HttpSource, PromptClient, PromptRef
from promptopt.spec import Decoding, Message
from promptopt.store import get_store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_results import header, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results" / "registry.json"
NAME = "support-triage"
TOKEN = "bench-token-0123456789"
_SERVER = """
import sys, uvicorn
from promptopt.server import create_app
from promptopt.store import get_store
uvicorn.run(create_app(get_store(sys.argv[1]), token=sys.argv[3]), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


def prompt_config() -> PromptConfig:
    """A realistic version: instruction, four examples, decoding parameters and a JSON response format."""
    examples = tuple(
        Example(input={"ticket": f"ticket text number {i} " * 8}, output=label)
        for i, label in enumerate(["billing", "bug", "account", "other"])
    )
    return PromptConfig(
        messages=(
            Message(
                role="system",
                content="Route the support ticket to one queue: billing, bug, account "
                "or other. Answer with the queue name only.",
            ),
            Message(role="user", content="Ticket: {{ticket}}"),
        ),
        model="openai/gpt-4o-mini",
        params=Decoding(temperature=0.0, max_tokens=8, seed=1),
        examples=examples,
        response_format={"type": "text"},
    )


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    return {
        "n": len(ordered),
        "median_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
    }


def timed(call: Callable[[], Any], n: int) -> dict[str, float]:
    clock = time.perf_counter
    samples = []
    for _ in range(n):
        start = clock()
        call()
        samples.append(clock() - start)
    return percentiles(samples)


def sdk_lookups(store_url: str, base_url: str, n: int, cache_dir: Path) -> dict[str, Any]:
    client = PromptClient(store_url, ttl_s=3600, cache_dir=cache_dir)
    client.get(NAME)  # fill the cache
    registry = Registry(get_store(store_url))
    source = HttpSource(base_url)
    ref = PromptRef.of(NAME)
    uncached = max(200, n // 20)
    results = {
        "cached_get": timed(lambda: client.get(NAME), n),
        "cached_get_and_render": timed(lambda: client.get(NAME).render(ticket="The invoice is wrong"), n),
        "store_get_uncached": timed(lambda: registry.get(NAME, label="production"), uncached),
        "http_fetch_uncached": timed(lambda: source.fetch(ref), uncached),
    }
    source.close()
    registry.store.dispose()
    return results


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, store_url, str(port), TOKEN])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def ensure_wrk() -> tuple[str | None, str]:
    """wrk's path and how it was found; installs it with apt-get only when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found, "already installed"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "wrk missing and apt-get unavailable (or not root)"
    for step in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        subprocess.run(step, capture_output=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if shutil.which("wrk"):
            return shutil.which("wrk"), "installed with apt-get"
    return None, "apt-get install wrk failed"


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def _latency_us(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    assert match, f"no {label} latency in wrk's output"
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_run(wrk: str, url: str, headers: dict[str, str], seconds: int, connections: int) -> dict[str, Any]:
    args = [wrk, f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests_per_s": rps,
        "median_us": _latency_us(out, "50%"),
        "p99_us": _latency_us(out, "99%"),
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "connections": connections,
    }


async def _httpx_load(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, Any]:
    import httpx

    samples: list[float] = []
    statuses: set[int] = set()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < end:
                start = time.perf_counter()
                response = await client.get(url)
                samples.append(time.perf_counter() - start)
                statuses.add(response.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = time.perf_counter() - started
    stats = percentiles(samples)
    return {
        "requests_per_s": len(samples) / wall,
        "median_us": stats["median_us"],
        "p99_us": stats["p99_us"],
        "statuses": sorted(statuses),
        "connections": connections,
    }


def http_load(base: str, seconds: int, connections: int) -> dict[str, Any]:
    url = f"{base}/v1/prompts/{NAME}?label=production"
    import httpx

    etag = httpx.get(url).headers["etag"]
    wrk, how = ensure_wrk()
    # Loaded (throughput, queueing latency), and one connection at a time (the latency of one lookup).
    runs = {
        "200_from_store": ({}, connections),
        "304_if_none_match": ({"If-None-Match": etag}, connections),
        "200_one_connection": ({}, 1),
    }
    if wrk is not None:
        results = {name: wrk_run(wrk, url, headers, seconds, conns) for name, (headers, conns) in runs.items()}
        return {"load_generator": f"wrk ({how}), 2 threads", **results}
    results = {name: asyncio.run(_httpx_load(url, headers, seconds, conns)) for name, (headers, conns) in runs.items()}
    return {
        "load_generator": f"asyncio httpx loop (fallback: {how}); lower bounds, the client costs CPU too",
        **results,
    }


def table(results: dict[str, Any]) -> str:
    sdk, http = results["sdk"], results["http"]
    rows = ["| measure | median | p99 | throughput |", "|---|---|---|---|"]
    labels = {
        "cached_get": "SDK `get` from memory cache",
        "cached_get_and_render": "SDK `get` + `render`",
        "store_get_uncached": "uncached `Registry.get` (SQLite)",
        "http_fetch_uncached": "uncached HTTP fetch (one loopback round trip)",
    }
    for key, label in labels.items():
        s = sdk[key]
        rows.append(
            f"| {label} ({s['n']} calls) | {s['median_us']:.1f} µs | {s['p99_us']:.1f} µs "
            f"| {1e6 / s['mean_us']:,.0f} /s (one thread) |"
        )
    for key, label in (
        ("200_from_store", "HTTP GET by label, 200"),
        ("304_if_none_match", "HTTP GET, 304"),
        ("200_one_connection", "HTTP GET by label, 200"),
    ):
        h = http[key]
        rows.append(
            f"| {label} ({h['connections']} conn.) | {h['median_us'] / 1000:.2f} ms "
            f"| {h['p99_us'] / 1000:.2f} ms | {h['requests_per_s']:,.0f} req/s |"
        )
    ratio = sdk["http_fetch_uncached"]["median_us"] / sdk["cached_get"]["median_us"]
    rows.append(
        f"\nLoad generator: {http['load_generator']}. A cached SDK lookup is {ratio:,.0f}x faster than one "
        f"HTTP round trip (medians). Machine: {results['machine']['cpu']}, "
        f"{results['machine']['cpu_count']} cores (server and load generator share them)."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=20_000, help="SDK lookups timed (cached).")
    parser.add_argument("--seconds", type=int, default=10, help="Seconds of each HTTP load run.")
    parser.add_argument("--connections", type=int, default=32, help="Concurrent HTTP connections.")
    parser.add_argument("--quick", action="store_true", help="2k lookups, 3 s per HTTP run.")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS.parent,
        help="where registry.json goes (a smoke run writes to a scratch folder)",
    )
    args = parser.parse_args()
    if args.quick:
        args.lookups, args.seconds = 2_000, 3
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'registry.db'}"
        store = get_store(store_url)
        registry = Registry(store)
        version, _ = registry.register(NAME, prompt_config(), lineage=Lineage(test_score=0.9), created_by="bench")
        registry.set_label(NAME, "production", version.version, who="bench")
        store.dispose()
        server, base = start_server(store_url)
        try:
            results = {
                **header(script="bench_registry.py", versions=("fastapi", "uvicorn", "sqlalchemy", "httpx")),
                "quick": args.quick,
                "lookups": args.lookups,
                "http_seconds": args.seconds,
                "sdk": sdk_lookups(store_url, base, args.lookups, Path(tmp) / "lkg"),
                "http": http_load(base, args.seconds, args.connections),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
    out = args.results_dir / RESULTS.name
    write_result(results, out)
    print(table(results))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
