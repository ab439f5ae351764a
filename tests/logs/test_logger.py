"""The SDK's PromptLogger: nothing is lost while the server is down (spooled, then sent, also by the next
process), secrets never leave the process, and the application's call never blocks or raises."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from promptopt import logs, names
from promptopt.logs import LogQuery, LogStore
from promptopt.logs import _values as wire
from promptopt.registry import LABEL_PATTERN, NAME_PATTERN
from promptopt.sdk import _log_records
from promptopt.sdk._logger import PromptLogger
from promptopt.secrets import scrub_record
from promptopt.store import Store, get_store
from tests.schedules.helpers import TOKEN, served

KEY = "sk-proj-abcdefghijklmnopqrstuvwx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def traffic(logger: PromptLogger, start: int, n: int) -> list[str]:
    ids = []
    for i in range(start, start + n):
        log_id = logger.log(
            "reviews",
            1,
            {"text": f"review {i}"},
            "positive",
            model="fake/m",
            latency_s=0.1,
            tokens=5,
            metadata={"i": i},
        )
        logger.feedback(log_id, label="negative" if i % 2 else "positive")
        ids.append(log_id)
    return ids


def test_logging_with_the_server_down_loses_nothing_once_it_is_back(store: Store, tmp_path: Path) -> None:
    port = free_port()
    url, spool = f"http://127.0.0.1:{port}", tmp_path / "spool"
    options = {"token": TOKEN, "spool_dir": spool, "flush_interval_s": 0.05, "batch_size": 50, "timeout_s": 2}

    first = PromptLogger(url, **options)  # the server is not up yet
    started = time.perf_counter()
    ids = traffic(first, 0, 120)
    assert time.perf_counter() - started < 1.0  # the application never waits for the network
    assert not first.flush(timeout_s=3)
    first.close()  # this process ends with its logs on disk
    assert list(spool.glob("*.json")) and not list(spool.glob("*.tmp"))
    assert KEY not in "".join(p.read_text() for p in spool.glob("*.json"))

    with served(store, port=port):
        second = PromptLogger(url, **options)  # the next process sends what the first one left
        ids += traffic(second, 120, 30)
        assert second.flush(timeout_s=10)
        assert not list(spool.glob("*.json"))
    ids += traffic(second, 150, 40)  # the server stops again, mid-traffic
    assert not second.flush(timeout_s=3)
    with served(store, port=port):
        assert second.flush(timeout_s=10)
    second.close()

    entries = LogStore(store).query(LogQuery(prompt="reviews"))
    assert sorted(e.id for e in entries) == sorted(ids) and len(ids) == 190
    assert all(
        e.feedback is not None and e.feedback.label == ("negative" if e.metadata["i"] % 2 else "positive")
        for e in entries
    )
    for logger in (first, second):
        assert logger.stats.dropped == 0 and logger.stats.rejected == 0
    assert second.stats.spooled > 0 and second.stats.spool_files == 0


def test_an_sk_key_in_input_and_metadata_is_scrubbed_before_it_leaves_the_process(store: Store) -> None:
    with PromptLogger(store, spool_dir=False, flush_interval_s=0.05) as logger:
        log_id = logger.log(
            "reviews",
            2,
            {"text": f"my key is {KEY}", "nested": [{"k": KEY}]},
            f"got {KEY}",
            metadata={
                "api_key": KEY,
                "password": "hunter2hunter2",
                "tokens": 7,
                "headers": {"Authorization": f"Bearer {KEY}"},
            },
        )
        logger.feedback(log_id, corrected=f"never echo {KEY}")
        assert logger.flush()
    entry = LogStore(store).get(log_id)
    assert KEY not in repr(entry.model_dump()) and "hunter2" not in repr(entry.model_dump())
    assert entry.input == {"text": "my key is [REDACTED]", "nested": [{"k": "[REDACTED]"}]}
    assert entry.output == "got [REDACTED]"
    assert entry.metadata == {
        "api_key": "[REDACTED]",
        "password": "[REDACTED]",
        "tokens": 7,
        "headers": {"Authorization": "[REDACTED]"},
    }
    assert entry.feedback.corrected == "never echo [REDACTED]"


def test_a_custom_scrub_runs_first_and_a_failing_one_drops_the_record(store: Store) -> None:
    def no_emails(record: dict) -> dict:
        if "boom" in str(record.get("input")):
            raise RuntimeError("scrubber bug")
        return {**scrub_record(record), "metadata": {k: v for k, v in record["metadata"].items() if k != "email"}}

    with PromptLogger(store, spool_dir=False, flush_interval_s=0.05, scrub=no_emails) as logger:
        kept = logger.log("reviews", 1, {"text": "hi"}, "ok", metadata={"email": "a@b.c", "plan": "pro"})
        dropped = logger.log("reviews", 1, {"text": "boom"}, "ok")
        assert logger.flush() and logger.stats.rejected == 1 and "scrubber bug" in logger.stats.last_error
    assert LogStore(store).get(kept).metadata == {"plan": "pro"}
    assert [e.id for e in LogStore(store).query(LogQuery())] == [kept] and dropped != kept


def test_log_never_raises_and_never_blocks(sqlite_url: str) -> None:
    with socket.socket() as hanging:  # accepts connections (backlog) but never answers: sends wait for timeout_s
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
        logger = PromptLogger(url, spool_dir=False, max_queue=100, batch_size=10, flush_interval_s=0.01, timeout_s=3)
        time.sleep(0.2)
        started = time.perf_counter()
        for i in range(2000):
            logger.log("reviews", 1, {"text": f"{i}"}, "x")
        assert time.perf_counter() - started < 1.0  # while the sender is stuck in a request
        assert logger.stats.dropped >= 1900 - 100 and logger.stats.sent == 0  # bounded: the oldest go first
        assert logger.log("not a name!", 1, {}, "x") and logger.log("reviews", 1, {}, "x", id="bad id with spaces")
        logger.feedback("anything")  # no score, label or corrected
        assert logger.stats.rejected == 3
        logger.close(timeout_s=0.5)
        logger.log("reviews", 1, {}, "x")  # after close: refused, counted, no exception
        assert logger.stats.rejected == 4

    store = get_store(sqlite_url)
    with PromptLogger(store, spool_dir=False, flush_interval_s=0.05) as odd:
        weird = odd.log(
            "reviews",
            True,
            {"when": object(), "nan": float("nan"), "set": {1}},
            None,
            latency_s=-3,
            tokens="many",
            cost_usd=float("inf"),
            label="Not A Label",
        )
        assert odd.flush() and odd.stats.rejected == 0
    entry = LogStore(store).get(weird)
    assert entry.version is None and entry.label is None and entry.latency_s is None and entry.tokens is None
    assert entry.input["nan"] == "nan" and entry.input["set"] == [1] and entry.input["when"].startswith("<object")
    store.dispose()


def test_an_entry_the_destination_refuses_is_dropped_alone(store: Store) -> None:
    with PromptLogger(store, spool_dir=False, flush_interval_s=0.05, batch_size=100) as logger:
        ids = [logger.log("reviews", 1, {"text": f"{i}"}, "x") for i in range(10)]
        for i, log_id in enumerate(ids):
            logger.feedback(log_id if i != 6 else "never-logged", score=1.0)
        assert logger.flush()
    assert logger.stats.rejected == 1 and "never-logged" in logger.stats.last_error
    with_feedback = LogStore(store).query(LogQuery(with_feedback=True))
    assert len(with_feedback) == 9 and ids[6] not in {e.id for e in with_feedback}


def test_the_sdk_checks_what_the_server_checks() -> None:
    assert names.NAME_PATTERN == logs.NAME_PATTERN == NAME_PATTERN
    assert names.LABEL_PATTERN == logs.LABEL_PATTERN == LABEL_PATTERN
    assert names.LOG_ID_PATTERN == logs.ID_PATTERN
    assert (_log_records.is_prompt_name, _log_records.is_label, _log_records.is_log_id) == (
        names.is_prompt_name,
        names.is_label,
        names.is_log_id,
    )
    assert _log_records.MAX_TEXT == wire.MAX_TEXT and _log_records.MAX_BATCH == wire.MAX_BATCH


_LOG = """
import json, sys
from promptopt.sdk._logger import PromptLogger
with PromptLogger(sys.argv[1], token=sys.argv[2], spool_dir=False) as logger:
    logger.feedback(logger.log("reviews", 1, {"text": "hi"}, "ok"), score=1)
    sent = logger.flush()
print(json.dumps({"sent": sent, "loaded": [m for m in sys.argv[3].split(",") if m in sys.modules]}))
"""


def test_logging_over_http_imports_none_of_the_heavy_libraries(store: Store) -> None:
    heavy = ["ray", "optuna", "dspy", "litellm", "sqlalchemy", "fastapi", "promptopt.store"]
    with served(store) as url:
        run = subprocess.run(
            [sys.executable, "-c", _LOG, url, TOKEN, ",".join(heavy)], capture_output=True, text=True, timeout=60
        )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"sent": True, "loaded": []}
    assert LogStore(store).query(LogQuery(with_feedback=True))[0].feedback.score == 1.0


# promptopt.secrets' patterns as of this change; the quick pre-check of scrub_record (secrets._TRIGGERS) is derived
# from them.
SECRET_PATTERNS = [
    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}",
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    r"\bAIza[0-9A-Za-z_\-]{20,}",
    r"\b(?:ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{16,}",
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
    r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}",
    r"(?i)((?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,]{6,}",
]


def test_the_quick_pre_check_scrubs_exactly_what_scrub_secrets_scrubs() -> None:
    from promptopt import secrets

    assert [p.pattern for p in secrets._SECRET_PATTERNS] == SECRET_PATTERNS, (
        "promptopt.secrets' patterns changed: update promptopt.secrets._TRIGGERS, then this list"
    )
    samples = [
        f"key {KEY} here",
        "AKIAABCDEFGHIJKLMNOP",
        "AIza" + "x" * 24,
        "ghp_" + "a" * 20,
        "xoxb-1234567890ab",
        "Authorization: BEARER abcdefgh123",
        "ſecret=hunter2hunter2",
        "API-KEY: 'abcdef123456'",
        "toKen=abcdef123",
        "a plain sentence with no secret at all",
        "sk-short",
        "",
    ]
    for text in samples:
        assert secrets._scrub_text(text) == secrets.scrub_secrets(text), text


def test_closing_on_a_hanging_server_keeps_even_the_batch_in_flight(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with socket.socket() as hanging:  # accepts, never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        logger = PromptLogger(
            f"http://127.0.0.1:{hanging.getsockname()[1]}",
            spool_dir=spool,
            batch_size=10,
            flush_interval_s=0.01,
            timeout_s=5,
        )
        ids = traffic(logger, 0, 30)
        time.sleep(0.3)  # the first batch is in flight, stuck
        started = time.perf_counter()
        logger.close(timeout_s=0.5)
        assert time.perf_counter() - started < 2
    spooled = [
        body["id"] for p in spool.glob("*.json") for kind, body in json.loads(p.read_text())["events"] if kind == "log"
    ]
    assert set(ids) <= set(spooled)
    with served(store) as url, PromptLogger(url, token=TOKEN, spool_dir=spool, flush_interval_s=0.01) as heir:
        assert heir.flush(timeout_s=10)
    assert sorted(e.id for e in LogStore(store).query(LogQuery())) == sorted(ids)
