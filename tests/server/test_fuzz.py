"""Schemathesis fuzzes every operation of /openapi.json on a real server (examples, coverage, fuzzing and
stateful phases, valid and invalid data): no 5xx, and every answer is one the document declares (status,
content type, headers, body schema); invalid data is rejected and auth is not ignored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.server.helpers import TOKEN, served

# positive_data_acceptance is left out: a valid-looking name of a prompt that does not exist is a 404.
ARGS = [
    "--checks",
    "all",
    "--exclude-checks",
    "positive_data_acceptance",
    "--max-examples",
    "30",
    "--seed",
    "0",
    "--workers",
    "1",
    "--request-timeout",
    "30",
    "--suppress-health-check",
    "all",
]


def test_fuzzing_the_openapi_document_finds_no_server_error(tmp_path: Path) -> None:
    # The schemathesis CLI rather than its pytest plugin, which does not run under pytest 9.
    with served(tmp_path) as server:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.url}/openapi.json",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                *ARGS,
                "--report",
                "junit",
                "--report-junit-path",
                str(tmp_path / "junit.xml"),
            ],
            capture_output=True,
            text=True,
            timeout=55,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "Operations:       8 selected / 8 total" in run.stdout
        assert server.model.requests > 0  # invoke reached the model with well-formed requests
    junit = (tmp_path / "junit.xml").read_text()
    assert 'failures="0"' in junit and 'errors="0"' in junit
