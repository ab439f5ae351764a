"""Benchmark the eval engine against its limit (the model's latency) and against ``dspy.Evaluate``.

A loopback OpenAI-compatible server (aiohttp, in its own process) answers every call after a fixed latency.
Both systems evaluate the same rows with the same concurrency, cache off, side by side in one run:

* efficiency = ideal time (rows x latency / concurrency) / measured time, at concurrency 1, 8, 32, 128;
* the per-row overhead of each, against a zero-latency server, one row at a time;
* a fully cached re-run of our engine (disk cache);
* calls per row, counted by the server (DSPy's ChatAdapter output is answered in its own format, so that a
  row costs it one call, as it would on a model that follows the format).

Before that, a bare aiohttp client checks that the server itself sustains the rate the highest concurrency
needs (the stock ``FakeOpenAIServer``, a ``ThreadingHTTPServer``, is checked the same way for the record).

Usage:
    .venv/bin/python experiments/bench_engine.py                    # 1,000 rows at 1, 8, 32, 128
    .venv/bin/python experiments/bench_engine.py --quick            # 60 rows at 1 and 32
    .venv/bin/python experiments/bench_engine.py --fail-rate 0.05   # inject 429s (with Retry-After)
    .venv/bin/python experiments/bench_engine.py serve --latency 0.05   # only the server, until killed

Writes ``<results-dir>/engine.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download on import
os.environ.setdefault("OPENAI_API_KEY", "dummy")  # the loopback server ignores it; litellm wants one

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_results import RESULTS_DIR, header, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(__file__).resolve().parent / "datasets"  # in the repo; origin and licence in its README.md
INSTRUCTION = "Is the following movie review positive or negative?"
LABELS = ("positive", "negative")
POSITIVE = ("good", "great", "love", "best", "wonderful", "fun", "funny", "beautiful", "moving")
_DSPY_OUTPUT = re.compile(r"Your output fields are:\s*1\. `(\w+)`")
_DSPY_INPUT = re.compile(r"\[\[ ## \w+ ## \]\]\n(.*?)\n\nRespond with", re.S)


# -- the server -----------------------------------------------------------------------------------------------
def answer(messages: list[dict[str, Any]], garble: Sequence[str] = ()) -> str:
    """A keyword label for the review; in DSPy's ChatAdapter format when the system message asks for it,
    except for the DSPy output fields named in ``garble`` (answered as plain prose, which DSPy cannot parse)."""
    system = str(messages[0].get("content", "")) if messages else ""
    text = str(messages[-1].get("content", "")) if messages else ""
    dspy_field = _DSPY_OUTPUT.search(system)
    if dspy_field and dspy_field.group(1) in garble:
        return "Sure! Here is what I think about that."
    if dspy_field:
        found = _DSPY_INPUT.search(text)
        text = found.group(1) if found else text
    label = "positive" if any(w in text.lower() for w in POSITIVE) else "negative"
    if dspy_field:
        return f"[[ ## {dspy_field.group(1)} ## ]]\n{label}\n\n[[ ## completed ## ]]"
    return label


def serve(latency_s: float, fail_rate: float, port: int = 0, seed: int = 0, garble: Sequence[str] = ()) -> None:
    """Serve ``POST /v1/chat/completions`` on 127.0.0.1 until killed; ``GET /stats`` returns the counters."""
    from aiohttp import web

    rng = random.Random(seed)
    stats = {"requests": 0, "failures": 0, "in_flight": 0, "peak_in_flight": 0}

    async def completions(request: web.Request) -> web.Response:
        payload = await request.json()
        stats["requests"] += 1
        stats["in_flight"] += 1
        stats["peak_in_flight"] = max(stats["peak_in_flight"], stats["in_flight"])
        try:
            if latency_s:
                await asyncio.sleep(latency_s)
            if rng.random() < fail_rate:
                stats["failures"] += 1
                return web.json_response(
                    {"error": {"message": "injected failure", "type": "rate_limit_error"}},
                    status=429,
                    headers={"Retry-After": "0.05"},
                )
            text = answer(payload.get("messages", []), garble)
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in payload.get("messages", []))
            return web.json_response(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": payload.get("model", "fake"),
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(text.split()),
                        "total_tokens": prompt_tokens + len(text.split()),
                    },
                }
            )
        finally:
            stats["in_flight"] -= 1

    async def get_stats(request: web.Request) -> web.Response:
        out = dict(stats)
        if request.query.get("reset"):
            stats["peak_in_flight"] = stats["in_flight"]
        return web.json_response(out)

    async def main() -> None:
        app = web.Application()
        app.add_routes([web.post("/v1/chat/completions", completions), web.get("/stats", get_stats)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"http://127.0.0.1:{bound}/v1", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class ServerProcess:
    """A fake server in a child process (its CPU is not the client's): ``url``, ``stats()``, ``stop()``."""

    def __init__(self, command: list[str], *, quiet: bool = False) -> None:
        self._proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if quiet else None, text=True, cwd=REPO
        )
        line = self._proc.stdout.readline().strip() if self._proc.stdout else ""
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the fake server did not start: {command}")
        self.url = line

    @classmethod
    def aiohttp(cls, latency_s: float, fail_rate: float = 0.0, garble: Sequence[str] = ()) -> ServerProcess:
        return cls(
            [
                sys.executable,
                __file__,
                "serve",
                "--latency",
                str(latency_s),
                "--fail-rate",
                str(fail_rate),
                *(["--garble", *garble] if garble else []),
            ]
        )

    @classmethod
    def stock(cls, latency_s: float) -> ServerProcess:
        """``promptopt.testing.FakeOpenAIServer`` (ThreadingHTTPServer) behind its own command line."""
        # quiet: it prints a traceback for every client that gave up on it
        return cls([sys.executable, "-m", "promptopt.testing._fake_server", "--latency", str(latency_s)], quiet=True)

    def stats(self, *, reset: bool = False) -> dict[str, int]:
        """Requests, injected failures, calls in flight and their peak (since the last ``reset``)."""
        import urllib.request

        base = self.url.removesuffix("/v1")
        with urllib.request.urlopen(f"{base}/stats" + ("?reset=1" if reset else ""), timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def bare_client(url: str, *, requests: int, concurrency: int, timeout_s: float = 30) -> tuple[float, int]:
    """Seconds for ``requests`` chat calls, ``concurrency`` at a time, from a minimal aiohttp client, and
    how many of them failed (connection reset, refused or not 200)."""
    import aiohttp

    body = {"model": "fake", "messages": [{"role": "user", "content": "a good film"}]}
    queue = iter(range(requests))
    errors = 0
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:

        async def worker() -> None:
            nonlocal errors
            for _ in queue:
                try:
                    async with session.post(f"{url}/chat/completions", json=body) as resp:
                        await resp.read()
                        errors += resp.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, errors


def check_server(latency_s: float, concurrency: int, requests: int) -> dict[str, Any]:
    """Efficiency of a bare client against our aiohttp server and against the stock threaded one."""
    out: dict[str, Any] = {"concurrency": concurrency, "latency_s": latency_s}
    # The stock server gets fewer requests: at 128 connections its listen backlog of 5 overflows and clients
    # wait out TCP's SYN retransmits (seen: 143 s for 2,560 requests; another time stalled for minutes), so
    # each request there has 30 s before it counts as failed.
    for name, factory, n in (
        ("stock_threading", ServerProcess.stock, 2 * concurrency),
        ("aiohttp", ServerProcess.aiohttp, requests),
    ):
        server = factory(latency_s)
        try:
            asyncio.run(bare_client(server.url, requests=concurrency, concurrency=concurrency))  # connect, warm up
            seconds, errors = asyncio.run(bare_client(server.url, requests=n, concurrency=concurrency))
        finally:
            server.stop()
        ideal = n * latency_s / concurrency
        out[name] = {"requests": n, "seconds": seconds, "efficiency": ideal / seconds, "failed_requests": errors}
        print(f"  server check, {name}: {ideal / seconds:.2f} of ideal, {errors} failed", file=sys.stderr)
    out["efficiency"] = out["aiohttp"]["efficiency"]
    return out


# -- the two systems ----------------------------------------------------------------------------------------
def read_rows(n: int) -> list[dict[str, Any]]:
    lines = (DATASETS / "sst2-train.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


class Ours:
    """Our engine over the rows: a spec as a user writes it, evaluated by ``Evaluator`` on one event loop."""

    def __init__(self, rows: list[dict[str, Any]], folder: Path, runner: asyncio.Runner) -> None:
        import yaml

        from promptopt.spec import load_spec
        from promptopt.validate import load_and_check

        (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        spec = {
            "task": {
                "name": "bench-engine",
                "model": "openai/fake",
                "prompt": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": "{{text}}"}],
                "params": {"temperature": 0, "max_tokens": 8},
                "output": {"type": "label", "labels": list(LABELS)},
            },
            "dataset": {"validation": "rows.jsonl"},
            "scorers": [{"type": "exact_match"}],
        }
        (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
        self.loaded = load_spec(folder / "spec.yaml")
        self.dataset = load_and_check(self.loaded)
        self.runner = runner  # one event loop for every run: litellm's clients and logging worker live on it

    def config(self, url: str) -> Any:
        from promptopt.config import PromptConfig

        task = self.loaded.spec.task
        params = task.params.model_copy(update={"extra": {"api_base": url}})
        return PromptConfig.from_task(task).model_copy(update={"params": params})

    def run(self, url: str, concurrency: int, *, cache_dir: Path | None = None) -> dict[str, Any]:
        from promptopt.cache import DiskResponseCache, NullCache
        from promptopt.engine import Evaluator, Services
        from promptopt.models import LiteLLMBackend
        from promptopt.scorers import build_scorers
        from promptopt.spec import EvalSettings

        config = self.config(url)
        cache = DiskResponseCache(cache_dir) if cache_dir else NullCache()
        evaluator = Evaluator(
            Services(
                backend=LiteLLMBackend(),
                cache=cache,
                settings=EvalSettings(concurrency=concurrency, max_error_rate=1.0),
            )
        )
        scorers = build_scorers(self.loaded.spec.scorers, base_dir=self.loaded.base_dir, backend=None)
        start = time.perf_counter()
        result = self.runner.run(
            evaluator.run(config, self.dataset.validation, scorers, name="bench-engine", dataset_hash=self.dataset.hash)
        )
        seconds = time.perf_counter() - start
        s = result.summary
        return {
            "seconds": seconds,
            "model_calls": s.model_calls,
            "errors": s.errors,
            "accuracy": s.objective,
            "cache_hits": sum(r.cache_hit for r in result.rows),
        }

    def requests(self, url: str) -> list[Any]:
        """The model requests the engine sends for these rows."""
        from promptopt.engine import request_for

        config = self.config(url)
        return [request_for(config, case.input, 60.0) for case in self.dataset.validation.cases]

    def backend_only(self, url: str) -> float:
        """Seconds for the same rows' requests sent one at a time straight to ``LiteLLMBackend.complete``:
        the share of our per-row cost that is litellm's, not the engine's."""
        from promptopt.models import LiteLLMBackend

        backend, requests = LiteLLMBackend(), self.requests(url)

        async def send() -> None:
            for request in requests:
                await backend.complete(request)

        start = time.perf_counter()
        self.runner.run(send())
        return time.perf_counter() - start


class DSPy:
    """``dspy.Evaluate`` over the same rows: ``Predict(text -> answer: Literal[...])``, cache off."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        import dspy

        from promptopt.models import LiteLLMBackend

        LiteLLMBackend()  # litellm configured as in our process (logging quiet, no telemetry)
        self.dspy = dspy
        self.devset = [dspy.Example(text=r["input"]["text"], answer=r["expected"]).with_inputs("text") for r in rows]

        class Sentiment(dspy.Signature):
            """Is the following movie review positive or negative?"""

            text: str = dspy.InputField()
            answer: Literal["positive", "negative"] = dspy.OutputField()

        self.program = dspy.Predict(Sentiment)

    def run(self, url: str, threads: int) -> dict[str, Any]:
        dspy = self.dspy
        lm = dspy.LM(
            "openai/fake",
            api_base=url,
            api_key="dummy",
            cache=False,
            engine="litellm",
            temperature=0,
            max_tokens=8,
            num_retries=3,
        )
        evaluate = dspy.Evaluate(
            devset=self.devset,
            metric=lambda ex, pred, trace=None: ex.answer == pred.answer,
            num_threads=threads,
            display_progress=False,
            provide_traceback=False,
            max_errors=len(self.devset),
        )
        start = time.perf_counter()
        with dspy.context(lm=lm):
            result = evaluate(self.program)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "accuracy": float(result.score) / 100}


# -- the measurement ----------------------------------------------------------------------------------------
def calls_between(server: ServerProcess, fn: Any) -> tuple[dict[str, Any], int]:
    before = server.stats()["requests"]
    out = fn()
    return out, server.stats()["requests"] - before


def best_of(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of the repeats (other work on the machine only ever slows a run down), with every time."""
    best = min(samples, key=lambda r: r["seconds"])
    return {**best, "all_seconds": [r["seconds"] for r in samples]}


def measure_level(
    server: ServerProcess, ours: Ours, theirs: DSPy, concurrency: int, *, rows: int, latency_s: float, repeats: int
) -> dict[str, Any]:
    """Both systems at one concurrency, ``repeats`` times each in alternating order (ABBA...), so that drift
    in the machine's load hits both alike; each side's best run is reported."""
    ideal = rows * latency_s / concurrency
    runs = {"ours": lambda: ours.run(server.url, concurrency), "dspy": lambda: theirs.run(server.url, concurrency)}
    samples: dict[str, list[dict[str, Any]]] = {"ours": [], "dspy": []}
    for k in range(repeats):
        for name in ("ours", "dspy") if k % 2 == 0 else ("dspy", "ours"):
            result, calls = calls_between(server, runs[name])
            samples[name].append({**result, "server_requests": calls})
            print(
                f"  {name:>4} at {concurrency:>3}: {result['seconds']:.2f} s (ideal {ideal:.2f} s), {calls} calls",
                file=sys.stderr,
            )
    out: dict[str, Any] = {"concurrency": concurrency, "ideal_s": ideal, "repeats": repeats}
    for name, got in samples.items():
        best = best_of(got)
        out[name] = {**best, "efficiency": ideal / best["seconds"]}
    out["time_ratio_ours_over_dspy"] = out["ours"]["seconds"] / out["dspy"]["seconds"]
    return out


def litellm_sync(url: str, requests: list[Any]) -> float:
    """Seconds for the same requests through ``litellm.completion`` (the synchronous path DSPy takes), one at a
    time: it tells litellm's own cost apart from ours."""
    import litellm  # noqa: TID251 - a reference measurement of the adapter's dependency, not a code path

    start = time.perf_counter()
    for request in requests:
        litellm.completion(
            model=request.model,
            messages=list(request.messages),
            api_base=url,
            api_key="dummy",
            max_tokens=8,
            temperature=0,
            num_retries=0,
        )
    return time.perf_counter() - start


def measure_overhead(ours: Ours, theirs: DSPy, rows: int, repeats: int) -> dict[str, Any]:
    """Per-row cost with nothing to wait for: a zero-latency server, one row at a time, best of ``repeats``."""
    with ServerProcess.aiohttp(0.0) as zero:
        ours.run(zero.url, 1)  # warm up both clients (imports, connection pools)
        theirs.run(zero.url, 1)
        times: dict[str, list[float]] = {"ours": [], "dspy": [], "backend": [], "sync": [], "bare": []}
        requests = ours.requests(zero.url)
        for _ in range(repeats):
            times["ours"].append(ours.run(zero.url, 1)["seconds"])
            times["dspy"].append(theirs.run(zero.url, 1)["seconds"])
            times["backend"].append(ours.backend_only(zero.url))
            times["sync"].append(litellm_sync(zero.url, requests))
            times["bare"].append(asyncio.run(bare_client(zero.url, requests=rows, concurrency=1))[0])
    ms = {k: 1000 * min(v) / rows for k, v in times.items()}
    return {
        "rows": rows,
        "repeats": repeats,
        "ours_ms_per_row": ms["ours"],
        "dspy_ms_per_row": ms["dspy"],
        "ratio_ours_over_dspy": ms["ours"] / ms["dspy"],
        "litellm_acompletion_ms_per_call": ms["backend"],
        "litellm_completion_sync_ms_per_call": ms["sync"],
        "engine_only_ms_per_row": ms["ours"] - ms["backend"],
        "bare_http_ms_per_call": ms["bare"],
    }


def measure(args: argparse.Namespace, folder: Path, runner: asyncio.Runner) -> dict[str, Any]:
    rows = read_rows(args.rows)
    ours, theirs = Ours(rows, folder, runner), DSPy(rows)
    n = min(args.rows, args.overhead_rows)
    (folder / "small").mkdir()
    results: dict[str, Any] = {
        "rows": args.rows,
        "latency_s": args.latency,
        "fail_rate": args.fail_rate,
        "repeats": args.repeats,
    }
    results["overhead"] = measure_overhead(Ours(rows[:n], folder / "small", runner), DSPy(rows[:n]), n, args.repeats)
    with ServerProcess.aiohttp(args.latency, args.fail_rate) as server:
        levels = []
        for c in args.concurrency:
            server.stats(reset=True)
            level = measure_level(server, ours, theirs, c, rows=args.rows, latency_s=args.latency, repeats=args.repeats)
            levels.append({**level, "server_peak_in_flight": server.stats()["peak_in_flight"]})
        results["levels"] = levels
        results["calls_per_row"] = {
            name: sum(lv[name]["server_requests"] for lv in levels) / (args.rows * len(levels))
            for name in ("ours", "dspy")
        }
        top = max(args.concurrency)
        ours.run(server.url, top, cache_dir=folder / "cache")  # fills the cache
        cached, calls = calls_between(server, lambda: ours.run(server.url, top, cache_dir=folder / "cache"))
        results["cached_rerun"] = {
            "rows": args.rows,
            "concurrency": top,
            "seconds": cached["seconds"],
            "ms_per_row": 1000 * cached["seconds"] / args.rows,
            "model_calls": cached["model_calls"],
            "cache_hits": cached["cache_hits"],
            "server_requests": calls,
        }
        results["server"] = server.stats()
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| concurrency | ideal s | ours s | ours eff. | DSPy s | DSPy eff. | ours/DSPy time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["levels"]:
        lines.append(
            f"| {r['concurrency']} | {r['ideal_s']:.2f} | {r['ours']['seconds']:.2f} "
            f"| {r['ours']['efficiency']:.2f} | {r['dspy']['seconds']:.2f} | {r['dspy']['efficiency']:.2f} "
            f"| {r['time_ratio_ours_over_dspy']:.2f} |"
        )
    o, c = results["overhead"], results["cached_rerun"]
    lines += [
        "",
        f"per-row overhead (zero latency, 1 at a time): ours {o['ours_ms_per_row']:.2f} ms, "
        f"DSPy {o['dspy_ms_per_row']:.2f} ms; cached re-run of {c['rows']} rows: {c['seconds']:.2f} s "
        f"({c['model_calls']} calls)",
        f"server check at {results['server_check']['concurrency']}: aiohttp "
        f"{results['server_check']['aiohttp']['efficiency']:.2f}, stock threaded "
        f"{results['server_check']['stock_threading']['efficiency']:.2f}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the server waits before answering")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of calls answered 429 (Retry-After)")
    parser.add_argument("--overhead-rows", type=int, default=300, help="rows for the zero-latency overhead")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each system per level (best one counts)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 rows at concurrency 1 and 32")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.concurrency, args.overhead_rows, args.repeats = 60, [1, 32], 30, 1
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        p = argparse.ArgumentParser()
        p.add_argument("--latency", type=float, default=0.05)
        p.add_argument("--fail-rate", type=float, default=0.0)
        p.add_argument("--port", type=int, default=0)
        p.add_argument("--garble", nargs="*", default=[], help="DSPy output fields to answer unparseably")
        a = p.parse_args(argv[1:])
        serve(a.latency, a.fail_rate, a.port, garble=a.garble)
        return {}
    args = parse_args(argv)
    results = {**header(script="bench_engine.py", versions=("litellm", "dspy", "aiohttp")), "quick": args.quick}
    top = max(args.concurrency)
    results["server_check"] = check_server(args.latency, top, requests=max(top * 10, args.rows))
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp, asyncio.Runner() as runner:
        try:
            results.update(measure(args, Path(tmp), runner))
        finally:
            from promptopt.models import LiteLLMBackend

            runner.run(LiteLLMBackend().aclose())  # a loop closed with litellm's worker pending can crash at exit
    write_result(results, args.results_dir / "engine.json")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
