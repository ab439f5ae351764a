"""The README's quick start is what the project really runs: two commands, CI calls the test one, and the
demo command works (run here on the embedded model, with its store and cache in a temporary folder)."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"## Quick start\n(.*?)\n## ", text, re.S)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "the quick start has no bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_quick_start_has_exactly_the_demo_and_the_test_command():
    assert quick_start_commands() == ["bash scripts/dev.sh demo", "bash scripts/dev.sh test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci


def test_dev_script_demo_runs_the_demo_spec_with_optimize_run():
    script = (ROOT / "scripts" / "dev.sh").read_text()
    demo = script[script.index("  demo)"):script.index(";;", script.index("  demo)"))]
    assert "cd experiments/demo" in demo and '"$VENV/bin/optimize" run spec.yaml' in demo
    assert (ROOT / "experiments" / "demo" / "spec.yaml").is_file()


@pytest.mark.slow
def test_the_demo_command_runs_on_the_embedded_model(tmp_path):
    env = {**os.environ, "OPTIMIZE_STORE": f"sqlite:///{tmp_path / 'demo.db'}",
           "OPTIMIZE_CACHE": str(tmp_path / "cache"), "DEMO_ARGS": "--json"}
    out = subprocess.run(["bash", "scripts/dev.sh", "demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["status"] == "finished" and result["trials"] >= 2
    assert result["baseline"]["config"]["model"] == "local/smollm2-135m"
    assert result["best"]["validation_score"] >= result["baseline"]["validation_score"]
    assert result["best"]["test_score"] is not None and result["model_calls"] > 0
