"""The offline replay of search rules (experiments/simulate_search.py) on small synthetic tables whose answers
are known: which configuration each rule must pick, and what each rule may spend."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))

import simulate_search as sim  # noqa: E402

ROWS = 10


def table(tmp_path: Path, quality: list[float], *, screen_truth: bool = True, sources: list[str] | None = None) -> Path:
    """A table of len(quality) configurations: config i scores ``quality[i]`` on test; its validation rows are
    its quality rounded to whole rows; its screen rows tell the truth (or the opposite order)."""
    configs = []
    for i, q in enumerate(quality):
        hits = round(q * ROWS)
        screen_hits = hits if screen_truth else ROWS - hits
        configs.append(
            {
                "params": {"instruction": i},
                "config_hash": f"h{i}",
                "designed": False,
                "validation": {str(c): float(c < hits) for c in range(ROWS)},
                "confirm": {str(c): float(c < screen_hits) for c in range(2 * ROWS)},
                "test": {str(c): float(c < round(q * 100)) for c in range(100)},
            }
        )
    space = {
        "dimensions": [
            {"kind": "instruction", "candidates": [""] * len(quality), "sources": sources or ["spec"] * len(quality)}
        ]
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"space": space, "baseline_hash": "h0", "configs": configs}))
    return path


def test_oracle_never_below_random_and_full_budget_finds_the_best(tmp_path):
    configs = sim.load(table(tmp_path, [0.1, 0.3, 0.5, 0.7, 0.9, 0.2]), screen_rows=ROWS)
    for seed in range(50):
        r = sim.RULES["random"](configs, random.Random(seed), 3 * ROWS)
        o = sim.RULES["oracle"](configs, random.Random(seed), 3 * ROWS)
        assert o.test >= r.test
    # a budget for every configuration: random search evaluates all of them and picks the best on validation
    assert sim.random_search()(configs, random.Random(0), 6 * ROWS).test == pytest.approx(0.9)


def test_screen_spends_its_rows_and_follows_the_screen(tmp_path):
    good = sim.load(table(tmp_path, [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.5]), screen_rows=ROWS)
    liar = sim.load(table(tmp_path, [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.5], screen_truth=False), screen_rows=ROWS)
    rule = sim.screened(batch=6, rows=ROWS)
    # baseline (10) + 6 screens of 10 rows + one full eval (10) = 80 calls: one candidate, the screen's best
    assert rule(good, random.Random(1), 80).test == pytest.approx(0.9)
    assert rule(liar, random.Random(1), 80).test == pytest.approx(0.2)  # a lying screen picks the worst
    assert rule(good, random.Random(1), 79).test == pytest.approx(0.1)  # one call short: only the baseline


def test_operator_instructions_are_outside_the_default_space(tmp_path):
    configs = sim.load(
        table(tmp_path, [0.1, 0.2, 0.95], sources=["spec", "grounded", "operator:format"]), screen_rows=ROWS
    )
    picks = {sim.RULES["random"](configs, random.Random(s), 3 * ROWS).test for s in range(20)}
    assert picks == {0.2}
    assert sim.RULES["random-all"](configs, random.Random(0), 3 * ROWS).test == pytest.approx(0.95)
