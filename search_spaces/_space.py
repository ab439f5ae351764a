"""A search space: the dimensions that vary, applied in order to the spec's configuration."""

from __future__ import annotations

from typing import Any, TypeVar

from optuna.distributions import BaseDistribution

from promptopt.config import PromptConfig
from promptopt.search_spaces._base import Dimension
from promptopt.search_spaces._dimensions import (
    ConstrainedDimension,
    FineTuneDimension,
    InstructionDimension,
    MaxTokensDimension,
    ModelDimension,
    TemperatureDimension,
)
from promptopt.search_spaces._fewshot import DemoSetDimension, FewShotDimension

D = TypeVar("D", bound=Dimension)

_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        InstructionDimension,
        FewShotDimension,
        DemoSetDimension,
        ModelDimension,
        TemperatureDimension,
        MaxTokensDimension,
        ConstrainedDimension,
        FineTuneDimension,
    )
}


def dimension_from_json(data: dict[str, Any]) -> Dimension:
    try:
        cls = _KINDS[data["kind"]]
    except KeyError:
        raise ValueError(f"unknown dimension kind {data.get('kind')!r}; expected one of {sorted(_KINDS)}") from None
    return cls.from_json(data)  # type: ignore[no-any-return]


class SearchSpace:
    """An ordered tuple of dimensions over a base configuration (the spec as written)."""

    def __init__(self, base: PromptConfig, dimensions: tuple[Dimension, ...]) -> None:
        names = [n for d in dimensions for n in d.distributions()]
        if len(names) != len(set(names)):
            raise ValueError(f"parameter names collide across dimensions: {names}")
        self.base, self.dimensions = base, tuple(dimensions)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {n: dist for d in self.dimensions for n, dist in d.distributions().items()}

    def baseline(self) -> dict[str, Any]:
        return {n: v for d in self.dimensions for n, v in d.baseline().items()}

    def design(self) -> list[dict[str, Any]]:
        """The designed start after the baseline: the spec's instruction with every dimension at its
        :meth:`Dimension.design` value, as one point (none when no dimension offers one)."""
        baseline = self.baseline()
        point = baseline | {n: v for d in self.dimensions for n, v in d.design().items()}
        return [point] if point != baseline else []

    def screen(self) -> list[dict[str, Any]]:
        """A factorial screen after the baseline: each dimension's :meth:`Dimension.design` alone, then all of
        them together (with the baseline, for two such dimensions, the full 2 x 2: constrained output or not x
        no examples or the most). Points equal to the baseline or to an earlier one are left out."""
        baseline = self.baseline()
        points: list[dict[str, Any]] = []
        for point in [baseline | d.design() for d in self.dimensions] + self.design():
            if point != baseline and point not in points:
                points.append(point)
        return points

    def find(self, kind: type[D]) -> D | None:
        """The space's dimension of type ``kind`` (``None``: it has none)."""
        return next((d for d in self.dimensions if isinstance(d, kind)), None)

    def region(self) -> dict[str, list[Any]]:
        """Per parameter, the values a practitioner searches first (see :meth:`Dimension.region`); parameters
        not named are free."""
        return {n: v for d in self.dimensions for n, v in d.region().items()}

    def config(self, params: dict[str, Any]) -> PromptConfig:
        """The configuration a trial's params stand for (missing params take the baseline value)."""
        full = self.baseline() | params
        config = self.base
        for dim in self.dimensions:
            config = dim.apply(config, {n: full[n] for n in dim.distributions()})
        return config

    def grid(self) -> dict[str, list[Any]]:
        return {n: v for d in self.dimensions for n, v in d.grid().items()}

    def grid_size(self) -> int:
        size = 1
        for values in self.grid().values():
            size *= len(values)
        return size

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base.model_dump(mode="json", by_alias=True),
            "dimensions": [d.to_json() for d in self.dimensions],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchSpace:
        return cls(PromptConfig.model_validate(data["base"]), tuple(dimension_from_json(d) for d in data["dimensions"]))
