"""The default path of ``optimize run``: no Ray yet, so the executor starts a local Ray and owns it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_factory_starts_a_local_ray_with_the_worker_env_and_shuts_it_down(tmp_path):
    # The variables must reach the workers through the executor, not by inheritance from this process.
    env = {k: v for k, v in os.environ.items() if k not in ("LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE")}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.workers.local_start", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["states"] == ["complete", "complete"], got["errors"]
    assert got["cpus"] == os.cpu_count()
    assert got["ray_after_close"] is False
