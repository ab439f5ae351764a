"""The ``guided`` sampler: a short random start, then always the unevaluated configuration that an additive
model of the factors scores highest, with a bonus for levels tried least.

Why this and not TPE at these budgets: a run buys 10 to 15 full evals. TPE spends its first 8 on random
start-up and then models each parameter's good and bad trials apart, from a handful of points. An additive
model (each level's effect = the mean residual of the trials at that level, shrunk towards zero) pools every
trial for every factor, so after 4 random trials it already says which instruction, which number of examples
and which output constraint did well, and the next trial combines the best of each. Replayed on the tabular
benchmark (``experiments/simulate_search.py``), this rule picked better winners than random search and than
random search's best possible pick among the configurations it evaluated.

Categorical and small integer parameters are the factors; any other parameter (a float temperature) is drawn
at random. Every configuration is proposed once: candidates are told apart by ``key`` (the configuration's
content hash) when one is given, so that parameters that build the same prompt (``k = 0`` with any strategy)
are not tried twice. Deterministic for a seed.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

MAX_LEVELS = 64  # an integer parameter with more values than this is not a factor (drawn at random)
MAX_POINTS = 20_000  # larger spaces are scored on a seeded sample of this many points


def levels(distribution: BaseDistribution) -> tuple[Any, ...] | None:
    """The values of a factor, or ``None`` for a parameter the model does not cover."""
    if isinstance(distribution, CategoricalDistribution):
        return tuple(distribution.choices)
    if isinstance(distribution, IntDistribution) and not distribution.log:
        count = (distribution.high - distribution.low) // distribution.step + 1
        if count <= MAX_LEVELS:
            return tuple(range(distribution.low, distribution.high + 1, distribution.step))
    return None


def additive_effects(
    points: Sequence[tuple[dict[str, Any], float]], names: Sequence[str], ridge: float = 1.0
) -> tuple[float, dict[str, dict[Any, tuple[float, int]]]]:
    """The grand mean of the scores and, per factor and level, (effect, trials): the mean residual of the
    trials at that level shrunk by ``ridge`` pseudo-trials at zero."""
    grand = sum(y for _, y in points) / len(points)
    effects: dict[str, dict[Any, tuple[float, int]]] = {}
    for name in names:
        sums: dict[Any, list[float]] = {}
        for params, y in points:
            if name in params:
                sums.setdefault(params[name], []).append(y - grand)
        effects[name] = {level: (sum(r) / (len(r) + ridge), len(r)) for level, r in sums.items()}
    return grand, effects


class GuidedSampler(BaseSampler):
    """``n_startup`` completed trials (the baseline counts) at random, then the additive model's best unseen
    point plus ``explore`` x the mean over factors of 1/(1 + trials at its level)."""

    def __init__(
        self,
        distributions: dict[str, BaseDistribution],
        *,
        seed: int,
        n_startup: int = 5,
        explore: float = 0.5,
        ridge: float = 1.0,
        key: Callable[[dict[str, Any]], str] | None = None,
        region: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        self._factors = {n: lv for n, d in distributions.items() if (lv := levels(d)) is not None}
        # The region start: every trial (start-up draws and the model's picks) stays inside these levels until
        # the region has no untried point left; then the whole space.
        wanted = region or {}
        self._region = {
            n: tuple(v for v in lv if v in set(wanted[n])) for n, lv in self._factors.items() if n in wanted
        }
        if any(not v for v in self._region.values()):
            raise ValueError(f"the region names no level of its parameters: {region}")
        self._space = {n: d for n, d in distributions.items() if n in self._factors}
        self._seed, self._n_startup, self._explore, self._ridge = seed, n_startup, explore, ridge
        # The content hash tells configurations apart only when the factors are all there is to a point.
        self._key = key if len(self._factors) == len(distributions) else None
        self._random = RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study.get_trials(deepcopy=False)
        scored = [
            (t.params, t.values[0])
            for t in trials
            if t.state is TrialState.COMPLETE and t.values and "duplicate_of" not in t.user_attrs
        ]
        names = [n for n in search_space if n in self._factors]
        # Seen: every finished trial, and the running ones of this batch (no two of a batch alike).
        taken = [t.params for t in trials if t.number != trial.number and t.state is not TrialState.WAITING]
        seen = {self._identity(p) for p in taken if all(n in p for n in names)}
        rng = random.Random(f"guided:{self._seed}:{trial.number}")
        region = self._points(names, rng, self._region) if self._region else []
        if len(scored) < self._n_startup:  # a random draw: from the region while it has an untried point
            rng.shuffle(region)
            return next((p for p in region if self._identity(p) not in seen), {})
        sign = 1.0 if study.direction is StudyDirection.MAXIMIZE else -1.0
        grand, effects = additive_effects([(p, sign * y) for p, y in scored], names, self._ridge)

        def score(point: dict[str, Any]) -> tuple[float, float]:
            total, rarity = grand, 0.0
            for name in names:
                effect, n = effects[name].get(point[name], (0.0, 0))
                total += effect
                rarity += 1.0 / (1 + n)
            return total + self._explore * rarity / len(names), rng.random()  # ties: a seeded draw

        for pool in (region, self._points(names, rng)):  # the region first, then the whole space
            for point in sorted(pool, key=score, reverse=True):
                if self._identity(point) not in seen:
                    return point
        return {}  # every point was tried: the random sampler draws (the loop tells a duplicate its twin)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _points(
        self, names: list[str], rng: random.Random, within: dict[str, tuple[Any, ...]] | None = None
    ) -> list[dict[str, Any]]:
        choices = [(within or {}).get(n, self._factors[n]) for n in names]
        if math.prod(len(c) for c in choices) <= MAX_POINTS:
            return [dict(zip(names, values, strict=True)) for values in itertools.product(*choices)]
        return [{n: rng.choice(c) for n, c in zip(names, choices, strict=True)} for _ in range(MAX_POINTS)]

    def _identity(self, params: dict[str, Any]) -> Any:
        point = {n: params[n] for n in self._factors if n in params}
        if self._key is not None:
            try:
                return self._key(point)
            except Exception:  # params the space cannot build (a trial of another space): by value
                pass
        return tuple(sorted((k, repr(v)) for k, v in point.items()))
