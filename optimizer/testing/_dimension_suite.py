"""The contract of :class:`promptopt.search_spaces.Dimension` as a test class to run against any dimension.

A test module defines the fixture ``dimension_case`` (a :class:`DimensionCase`, parametrised over as many
dimensions as it likes) and subclasses :class:`DimensionContract`; pytest collects the inherited tests.
The checks are what the search relies on: Optuna samples ``distributions()``, the grid sampler walks
``grid()``, trial 0 is ``baseline()`` and must be the spec as written, and every worker rebuilds the space
from its JSON and calls ``apply``.
"""

from __future__ import annotations

import copy
import json
import math
import random
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from promptopt.config import PromptConfig
from promptopt.search_spaces import Dimension, SearchSpace, dimension_from_json

MAX_GRID_POINTS = 128  # grid points a check applies; a larger grid is sampled (seeded), not walked
SAMPLED_POINTS = 16  # points drawn by Optuna's random sampler from distributions()
JSON_PRIMITIVES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class DimensionCase:
    """A dimension under test, the configuration it is applied to (its space's ``base``: the spec's) and the
    other dimensions of its space, whose parameter names it must not reuse."""

    dimension: Dimension
    base: PromptConfig
    others: tuple[Dimension, ...] = ()

    def space(self) -> SearchSpace:
        return SearchSpace(self.base, (*self.others, self.dimension))


def valid(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a value of ``dist`` (a choice of a categorical, in range and on step for numbers)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (TypeError, ValueError):
        return False


def grid_points(grid: dict[str, list[Any]], limit: int = MAX_GRID_POINTS) -> list[dict[str, Any]]:
    """The points of ``grid`` (all of them, or ``limit`` drawn with a fixed seed, first and last included)."""
    names, values = list(grid), list(grid.values())
    total = math.prod(len(v) for v in values)
    if total == 0:
        return []
    indexes = range(total) if total <= limit else sorted({0, total - 1, *random.Random(0).sample(range(total), limit)})
    return [_grid_point(names, values, index) for index in indexes]


def _grid_point(names: list[str], values: list[list[Any]], index: int) -> dict[str, Any]:
    point = {}
    for name, choices in zip(names, values, strict=True):
        index, pick = divmod(index, len(choices))
        point[name] = choices[pick]
    return point


def sampled_points(dimension: Dimension, n: int = SAMPLED_POINTS) -> list[dict[str, Any]]:
    """Params as a search trial gets them: asked of an Optuna study over ``distributions()``."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [study.ask(dimension.distributions()).params for _ in range(n)]


def points(dimension: Dimension) -> list[dict[str, Any]]:
    """Every kind of param set the search applies: the baseline, the designed start, grid and sampled points."""
    baseline = dimension.baseline()
    try:
        grid = grid_points(dimension.grid())
    except TypeError:  # a continuous parameter: no grid, which the contract allows
        grid = []
    return [baseline, baseline | dimension.design(), *grid, *sampled_points(dimension)]


def _snapshot(config: PromptConfig) -> tuple[str, str]:
    # ``origin`` is left out of the dump (and the hash), so it is compared apart: a mutable dict.
    return (
        json.dumps(config.model_dump(mode="json", by_alias=True), sort_keys=True),
        json.dumps(config.origin, sort_keys=True, default=repr),
    )


def _check_point(dimension: Dimension, point: dict[str, Any], what: str) -> None:
    dists = dimension.distributions()
    unknown = sorted(set(point) - set(dists))
    assert not unknown, f"{what} names parameters the dimension does not own: {unknown}"
    for name, value in point.items():
        assert isinstance(value, JSON_PRIMITIVES), f"{what}: {name}={value!r} is not a JSON primitive"
        assert valid(dists[name], value), f"{what}: {name}={value!r} is not a value of {dists[name]}"


class DimensionContract:
    """The :class:`~promptopt.search_spaces.Dimension` contract; needs a ``dimension_case`` fixture.

    Example::

        @pytest.fixture
        def dimension_case() -> DimensionCase:
            return DimensionCase(MyDimension(("a", "b")), base=PromptConfig.from_task(task))


        class TestMyDimension(DimensionContract):
            pass
    """

    def test_kind_is_declared_and_written_in_its_json(self, dimension_case: DimensionCase) -> None:
        dim = dimension_case.dimension
        assert isinstance(dim.kind, str) and dim.kind, f"{type(dim).__name__}.kind must be a non-empty string"
        assert dim.to_json().get("kind") == dim.kind, "to_json() must carry 'kind': dimension_from_json reads it"

    def test_distributions_are_named_typed_and_the_same_on_every_call(self, dimension_case: DimensionCase) -> None:
        dim = dimension_case.dimension
        dists = dim.distributions()
        assert dists, "a dimension owns at least one parameter"
        assert all(isinstance(n, str) and isinstance(d, BaseDistribution) for n, d in dists.items()), dists
        assert dim.distributions() == dists, "distributions() must be the same on every call"

    def test_parameter_names_are_unique_across_its_space(self, dimension_case: DimensionCase) -> None:
        mine = set(dimension_case.dimension.distributions())
        taken = {name for other in dimension_case.others for name in other.distributions()}
        assert not mine & taken, f"parameter names already used by another dimension: {sorted(mine & taken)}"
        dimension_case.space()  # the space accepts it beside the others

    def test_baseline_and_design_are_points_of_the_distributions(self, dimension_case: DimensionCase) -> None:
        dim = dimension_case.dimension
        assert set(dim.baseline()) == set(dim.distributions()), "baseline() must give every parameter a value"
        _check_point(dim, dim.baseline(), "baseline()")
        _check_point(dim, dim.design(), "design()")
        for name, values in dim.region().items():
            assert values, f"region(): {name} names no value (leave a free parameter out instead)"
            for value in values:
                _check_point(dim, {name: value}, "region()")

    def test_baseline_reproduces_the_base_configuration(self, dimension_case: DimensionCase) -> None:
        base = dimension_case.base
        applied = dimension_case.dimension.apply(base, dimension_case.dimension.baseline())
        assert applied.hash == base.hash, (
            "apply(base, baseline()) must be the base configuration unchanged (trial 0 is the spec as written); "
            f"got {applied.model_dump(mode='json')}, expected {base.model_dump(mode='json')}"
        )

    def test_every_grid_point_is_a_valid_point_that_applies(self, dimension_case: DimensionCase) -> None:
        dim = dimension_case.dimension
        try:
            grid = dim.grid()
        except TypeError:  # a continuous parameter cannot be searched exhaustively: allowed
            return
        assert set(grid) == set(dim.distributions()), "grid() must list the values of every parameter"
        assert all(value in grid[name] for name, value in dim.baseline().items()), "the baseline is in the grid"
        for point in grid_points(grid):
            _check_point(dim, point, f"grid point {point}")
            assert isinstance(dim.apply(dimension_case.base, point), PromptConfig)

    def test_sampled_params_are_json_primitives_and_apply(self, dimension_case: DimensionCase) -> None:
        dim = dimension_case.dimension
        for point in sampled_points(dim):
            _check_point(dim, point, f"sampled point {point}")
            assert isinstance(dim.apply(dimension_case.base, point), PromptConfig)

    def test_apply_is_pure_and_deterministic(self, dimension_case: DimensionCase) -> None:
        dim, base = dimension_case.dimension, dimension_case.base
        before = _snapshot(base)
        for point in points(dim):
            given = copy.deepcopy(point)
            first, second = dim.apply(base, point), dim.apply(base, point)
            assert _snapshot(base) == before, f"apply(config, {given}) changed the config it was given"
            assert point == given, f"apply(config, {given}) changed the params it was given to {point}"
            assert _snapshot(first) == _snapshot(second), f"apply(config, {given}) gave two different configs"

    def test_json_round_trip_gives_an_equal_dimension(self, dimension_case: DimensionCase) -> None:
        dim, base = dimension_case.dimension, dimension_case.base
        data = dim.to_json()
        again = dimension_from_json(json.loads(json.dumps(data)))  # as stored with the run
        assert type(again) is type(dim) and again == dim and again.to_json() == data
        assert (again.distributions(), again.baseline(), again.design(), again.region()) == (
            dim.distributions(),
            dim.baseline(),
            dim.design(),
            dim.region(),
        )
        for point in points(dim):
            assert again.apply(base, point).hash == dim.apply(base, point).hash, f"apply differs at {point}"

    def test_a_stored_space_gives_every_point_the_same_configuration(self, dimension_case: DimensionCase) -> None:
        space = dimension_case.space()
        again = SearchSpace.from_json(json.loads(json.dumps(space.to_json())))  # what every trial worker does
        for point in points(dimension_case.dimension):
            assert again.config(point).hash == space.config(point).hash, f"the stored space differs at {point}"
