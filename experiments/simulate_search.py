"""Replay search and selection rules on the tabular benchmarks of ``search_table.py``.

Each simulated seed draws configurations from a table in an order of its own and spends a call budget the way a
rule would (a full eval on validation costs its rows, a screen on train or a confirmation costs its rows); the
outcome is the test score of the configuration the rule picks. The same seeds serve every rule, so differences
are paired. The table is one sample of the space: use this to rank ideas before a live benchmark, not instead
of one.

    .venv/bin/python experiments/simulate_search.py --seeds 4000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLES = Path(__file__).resolve().parent / "results" / "search_tables"


@dataclass(frozen=True)
class Config:
    index: int
    params: dict[str, Any]
    source: str  # where its instruction came from: spec, model, operator:<name>, ...
    val: tuple[float, ...]
    screen: tuple[float, ...]  # train rows used to screen proposals
    confirm: tuple[float, ...]  # train rows used to confirm a shortlist (disjoint from screen)
    test: float
    baseline: bool
    designed: bool

    @property
    def val_mean(self) -> float:
        return sum(self.val) / len(self.val)


def load(path: Path, screen_rows: int) -> list[Config]:
    data = json.loads(path.read_text())
    instr = next(d for d in data["space"]["dimensions"] if d["kind"] == "instruction")
    sources = instr.get("sources") or ["spec"] * len(instr["candidates"])
    out = []
    for i, c in enumerate(data["configs"]):
        conf = [0.0 if v is None else float(v) for v in c["confirm"].values()]
        test = [0.0 if v is None else float(v) for v in c["test"].values()]
        out.append(
            Config(
                index=i,
                params=c["params"],
                source=sources[c["params"].get("instruction", 0)] if "instruction" in c["params"] else "spec",
                val=tuple(0.0 if v is None else float(v) for v in c["validation"].values()),
                screen=tuple(conf[:screen_rows]),
                confirm=tuple(conf[screen_rows:]),
                test=sum(test) / len(test),
                baseline=c["config_hash"] == data["baseline_hash"],
                designed=c.get("designed", False),
            )
        )
    return out


Rule = Callable[[list[Config], random.Random, int], Config]


def _order(configs: list[Config], rng: random.Random, pool: Callable[[Config], bool]) -> list[Config]:
    rest = [c for c in configs if pool(c) and not c.baseline]
    rng.shuffle(rest)
    return rest


def default_space(c: Config) -> bool:
    return not c.source.startswith("operator")


def any_config(c: Config) -> bool:
    return True


def _baseline(configs: list[Config]) -> Config:
    return next(c for c in configs if c.baseline)


def best_by_val(evaluated: list[Config]) -> Config:
    return max(evaluated, key=lambda c: c.val_mean)  # first of equals: the earliest evaluated


def random_search(pool: Callable[[Config], bool] = default_space, designed: bool = False) -> Rule:
    def rule(configs: list[Config], rng: random.Random, budget: int) -> Config:
        base = _baseline(configs)
        order = _order(configs, rng, pool)
        if designed:
            first = [c for c in order if c.designed]
            order = first + [c for c in order if not c.designed]
        n = budget // len(base.val)
        return best_by_val([base] + order[: n - 1])

    return rule


def oracle(pool: Callable[[Config], bool] = default_space) -> Rule:
    """The best test score among random search's evaluated configurations: what perfect selection gives."""

    def rule(configs: list[Config], rng: random.Random, budget: int) -> Config:
        base = _baseline(configs)
        n = budget // len(base.val)
        return max([base] + _order(configs, rng, pool)[: n - 1], key=lambda c: c.test)

    return rule


def confirmed(shortlist: int, pool: Callable[[Config], bool] = default_space) -> Rule:
    """Random search that keeps ``shortlist`` x confirmation rows of its budget to re-score its best."""

    def rule(configs: list[Config], rng: random.Random, budget: int) -> Config:
        base = _baseline(configs)
        rows = len(base.confirm)
        n = (budget - shortlist * rows) // len(base.val)
        return confirm_pick([base] + _order(configs, rng, pool)[: n - 1], shortlist)

    return rule


def screened(batch: int, rows: int, pool: Callable[[Config], bool] = default_space, pooled: bool = False) -> Rule:
    """Each candidate is the best of ``batch`` draws on ``rows`` train cases (a screen, not a candidate), then a
    full eval; the winner by validation (or validation and screen rows pooled)."""

    def rule(configs: list[Config], rng: random.Random, budget: int) -> Config:
        base = _baseline(configs)
        spent = len(base.val)
        order = _order(configs, rng, pool)
        evaluated = [base]
        while order:
            drawn, order = order[:batch], order[batch:]
            cost = len(drawn) * rows + len(base.val)
            if spent + cost > budget:
                break
            spent += cost
            evaluated.append(max(drawn, key=lambda c: sum(c.screen[:rows])))
        if pooled:
            return max(evaluated, key=lambda c: (sum(c.val) + sum(c.screen[:rows])) / (len(c.val) + rows))
        return best_by_val(evaluated)

    return rule


def shrunk_scores(
    points: Sequence[tuple[dict[str, Any], float]], rows: Sequence[int], names: Sequence[str]
) -> list[float] | None:
    """Each point's score pulled towards what the additive model of the *other* points predicts for it, by how
    noisy a mean of its ``rows`` is next to how much the points really differ (empirical Bayes).

    For scores in [0, 1]: a mean of n rows has variance at most m(1 - m)/n (binomial, the bound for any
    [0, 1] score), the points' spread beyond that noise is the real between-configuration variance, and the
    weight of a point's own mean is spread / (spread + noise). With 30 rows a lucky 0.77 among configurations
    that mostly score 0.53 is pulled down unless its factors did well elsewhere too: less winner's curse.
    ``None`` (no shrinkage) for fewer than three points or scores outside [0, 1].
    """
    scores = [y for _, y in points]
    if len(points) < 3 or any(not 0.0 <= y <= 1.0 for y in scores):
        return None
    noise = sum(y * (1 - y) / max(n, 1) for y, n in zip(scores, rows, strict=True)) / len(scores)
    mean = sum(scores) / len(scores)
    spread = max(sum((y - mean) ** 2 for y in scores) / len(scores) - noise, 1e-4)
    weight = spread / (spread + noise)
    from promptopt.search._guided import additive_effects

    out = []
    for i, (params, y) in enumerate(points):
        grand, effects = additive_effects([p for j, p in enumerate(points) if j != i], names)
        predicted = grand + sum(effects[n].get(params.get(n), (0.0, 0))[0] for n in names)
        out.append(weight * y + (1 - weight) * predicted)
    return out


def shrunk_pick(evaluated: list[Config]) -> Config:
    """The winner by ``shrunk_scores``: its validation mean blended with the additive model's leave-one-out
    prediction. Measured live at 9129ba7 as ``--select shrunk`` (bench method ours-guided-shrunk) and
    removed from the product: it lost to random search over 15 pairs (-0.067, p = 0.044), on SUBJ most of
    all, where the weight of a configuration's own score fell to about 0 and majority-rate configurations won."""
    scores = shrunk_scores(
        [(c.params, c.val_mean) for c in evaluated], [len(c.val) for c in evaluated], list(evaluated[0].params)
    )
    if scores is None:
        return best_by_val(evaluated)
    return evaluated[max(range(len(evaluated)), key=lambda i: (scores[i], -i))]  # ties: the earliest


def confirm_pick(evaluated: list[Config], shortlist: int) -> Config:
    """The best of the ``shortlist`` best by validation, by validation and confirmation rows pooled."""
    top = sorted(evaluated, key=lambda c: -c.val_mean)[:shortlist]
    return max(top, key=lambda c: (sum(c.val) + sum(c.confirm)) / (len(c.val) + len(c.confirm)))


def shrunk(pool: Callable[[Config], bool] = default_space) -> Rule:
    """Random search, winner by ``shrunk_pick``."""

    def rule(configs: list[Config], rng: random.Random, budget: int) -> Config:
        base = _baseline(configs)
        n = budget // len(base.val)
        return shrunk_pick([base] + _order(configs, rng, pool)[: n - 1])

    return rule


def guided(
    start: int,
    explore: float = 0.5,
    pool: Callable[[Config], bool] = default_space,
    select: str = "val",
    shortlist: int = 2,
) -> Rule:
    """The ``guided`` sampler's rule (``promptopt.search._guided``, the same model): ``start`` random draws,
    then always the unevaluated configuration of the table with the highest additive prediction plus
    ``explore`` x its levels' rarity (pool-based: it chooses among the table's remaining configurations, where
    the sampler chooses among the whole space's). The winner by ``select``: validation (``val``), ``shrunk_pick``
    (``shrunk``) or ``confirm_pick`` of ``shortlist`` (``confirm``, whose rows come out of the budget)."""
    from promptopt.search._guided import additive_effects

    def rule(configs: list[Config], rng: random.Random, budget: int) -> Config:
        base = _baseline(configs)
        reserve = shortlist * len(base.confirm) if select == "confirm" else 0
        n = (budget - reserve) // len(base.val)
        order = _order(configs, rng, pool)
        evaluated = [base] + order[: start - 1]
        rest = order[start - 1 :]
        names = list(base.params)
        while len(evaluated) < n and rest:
            grand, effects = additive_effects([(e.params, e.val_mean) for e in evaluated], names)

            def score(c: Config, grand: float = grand, effects: dict = effects) -> float:
                total, rarity = grand, 0.0
                for name in names:
                    effect, seen = effects[name].get(c.params[name], (0.0, 0))
                    total, rarity = total + effect, rarity + 1.0 / (1 + seen)
                return total + explore * rarity / len(names)

            nxt = max(rest, key=score)
            rest.remove(nxt)
            evaluated.append(nxt)
        if select == "shrunk":
            return shrunk_pick(evaluated)
        if select == "confirm":
            return confirm_pick(evaluated, shortlist)
        return best_by_val(evaluated)

    return rule


RULES: dict[str, Rule] = {
    "random": random_search(),
    "random-all": random_search(any_config),
    "random-designed": random_search(designed=True),
    "oracle": oracle(),
    "confirm3x30": confirmed(3),
    "screen2x5": screened(2, 5),
    "screen3x5": screened(3, 5),
    "screen3x8": screened(3, 8),
    "screen4x5": screened(4, 5),
    "screen4x10": screened(4, 10),
    "screen3x5-all": screened(3, 5, any_config),
    "screen3x8-pooled": screened(3, 8, pooled=True),
    "shrunk": shrunk(),
    "guided5": guided(5),
    "guided5-greedy": guided(5, 0.0),
    "guided3": guided(3),
    "guided8": guided(8),
    "guided5-all": guided(5, pool=any_config),
    "guided5-shrunk": guided(5, select="shrunk"),
    "guided5-confirm2": guided(5, select="confirm"),
    "guided5-confirm3": guided(5, select="confirm", shortlist=3),
    "guided3-shrunk": guided(3, select="shrunk"),
}


def simulate(configs: list[Config], budget: int, seeds: int, rules: Sequence[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {r: [] for r in rules}
    for s in range(seeds):
        for r in rules:
            out[r].append(RULES[r](configs, random.Random(s), budget).test)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--budget", type=int, default=390, help="search calls after the instruction proposals")
    parser.add_argument("--screen-rows", type=int, default=10, help="train rows of the table used for screening")
    parser.add_argument("--rules", nargs="+", default=list(RULES))
    parser.add_argument("tables", nargs="*", type=Path)
    args = parser.parse_args(argv)
    tables = args.tables or sorted(TABLES.glob("*.json"))
    diffs: dict[str, list[float]] = {r: [] for r in args.rules}
    for path in tables:
        configs = load(path, args.screen_rows)
        res = simulate(configs, args.budget, args.seeds, args.rules)
        tests = sorted(c.test for c in configs if default_space(c))
        print(
            f"{path.stem}: {len(configs)} configurations, test of the default space's: median "
            f"{statistics.median(tests):.3f}, best {tests[-1]:.3f}; baseline {_baseline(configs).test:.2f}"
        )
        for r in args.rules:
            d = [a - b for a, b in zip(res[r], res["random"], strict=True)]
            diffs[r] += d
            print(
                f"  {r:18s} test {statistics.fmean(res[r]):.3f}  vs random {statistics.fmean(d):+.3f} "
                f"(better {sum(x > 0 for x in d) / len(d):.2f}, worse {sum(x < 0 for x in d) / len(d):.2f})"
            )
    print("pooled over tables:")
    for r in args.rules:
        print(f"  {r:18s} vs random {statistics.fmean(diffs[r]):+.3f}")


if __name__ == "__main__":
    main()
