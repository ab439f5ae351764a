"""Budget presets: a preset buys a number of full evals and the calls they need at most on this data; what the
spec writes itself wins; ``--dry-run`` shows the preset, the calls and the dollars before anything runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptopt.cli.app import app
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, estimate_run, plan_run
from tests.search.helpers import loaded_and_data, write_spec

BACKEND = ScriptedBackend(lambda request: "positive")


@pytest.mark.parametrize(("preset", "trials"), [("light", 12), ("medium", 30), ("heavy", 80)])
def test_a_preset_buys_its_trials_and_the_calls_they_need_at_most(tmp_path, preset, trials):
    loaded, dataset = loaded_and_data(write_spec(tmp_path, budget={"preset": preset}))
    plan = plan_run(loaded, dataset, RunOptions(), BACKEND)
    estimate = estimate_run(loaded, dataset, trials=trials, top_k=2, backend=BACKEND)
    assert plan.max_trials == trials
    assert plan.max_calls == estimate["model_calls"] > trials * len(dataset.validation)


def test_what_the_spec_writes_wins_over_the_preset(tmp_path):
    loaded, dataset = loaded_and_data(write_spec(tmp_path, budget={"preset": "heavy", "trials": 5, "model_calls": 900}))
    plan = plan_run(loaded, dataset, RunOptions(), BACKEND)
    assert (plan.max_trials, plan.max_calls) == (5, 900)
    assert plan_run(loaded, dataset, RunOptions(max_trials=7), BACKEND).max_trials == 7


def test_dry_run_shows_the_preset_its_calls_and_dollars(tmp_path):
    spec = write_spec(tmp_path, budget={"preset": "light"}, search={"confirm": {"cases": 4, "shortlist": 2}})
    out = CliRunner().invoke(app, ["run", str(spec), "--dry-run"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["preset"] == "light" and shown["trials"] == 12
    assert shown["breakdown"]["confirm"] == 2 * 4 and shown["cost_usd"] >= 0
    assert shown["model_calls"] == sum(shown["breakdown"].values())


def test_an_unknown_preset_names_the_field(tmp_path):
    spec = write_spec(tmp_path, budget={"preset": "huge"})
    out = CliRunner().invoke(app, ["validate", str(spec)])
    assert out.exit_code == 2 and "budget.preset" in out.output
