"""A search space: the dimensions that vary, applied in order to the spec's configuration (one prompt, or a
code task whose prompts each have their own dimensions, :class:`ScopedDimension`)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from optuna.distributions import BaseDistribution

from promptopt.config import PipelineConfig, PromptConfig, TaskConfig, candidate_from_json
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


class ScopedDimension(Dimension):
    """A dimension of one named prompt of a code task: ``inner`` applied to that prompt's configuration, its
    parameters named ``<prompt>.<parameter>`` (``answer.instruction``), so every prompt is searched at once."""

    kind: ClassVar[str] = "scoped"

    def __init__(self, prompt: str, inner: Dimension) -> None:
        if isinstance(inner, ScopedDimension):
            raise ValueError("a scoped dimension wraps a dimension of one prompt, not another scoped one")
        self.prompt, self.inner = prompt, inner

    def _out(self, values: dict[str, Any]) -> dict[str, Any]:
        return {f"{self.prompt}.{n}": v for n, v in values.items()}

    def distributions(self) -> dict[str, BaseDistribution]:
        return self._out(self.inner.distributions())

    def baseline(self) -> dict[str, Any]:
        return self._out(self.inner.baseline())

    def design(self) -> dict[str, Any]:
        return self._out(self.inner.design())

    def region(self) -> dict[str, list[Any]]:
        return self._out(self.inner.region())

    def grid(self) -> dict[str, list[Any]]:
        return self._out(self.inner.grid())

    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig:
        """``inner`` on prompt ``prompt``'s configuration (``config``), from this dimension's prefixed params."""
        cut = len(self.prompt) + 1
        return self.inner.apply(config, {n[cut:]: v for n, v in params.items()})

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "prompt": self.prompt, "inner": self.inner.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScopedDimension:
        return cls(data["prompt"], dimension_from_json(data["inner"]))


_KINDS[ScopedDimension.kind] = ScopedDimension


def instruction_param(prompt: str | None) -> str:
    """The trial parameter of the instruction of ``prompt`` (a code task's), or of a one-prompt task."""
    return "instruction" if prompt is None else f"{prompt}.instruction"


def dimension_from_json(data: dict[str, Any]) -> Dimension:
    try:
        cls = _KINDS[data["kind"]]
    except KeyError:
        raise ValueError(f"unknown dimension kind {data.get('kind')!r}; expected one of {sorted(_KINDS)}") from None
    return cls.from_json(data)  # type: ignore[no-any-return]


class SearchSpace:
    """An ordered tuple of dimensions over a base candidate (the spec as written). A code task's space holds
    only :class:`ScopedDimension` values, each naming one of its prompts.

    Raises:
        ValueError: parameter names collide, or a dimension does not fit the base (a scoped dimension of a
            prompt the task does not have, an unscoped one on a code task).
    """

    def __init__(self, base: TaskConfig, dimensions: tuple[Dimension, ...]) -> None:
        names = [n for d in dimensions for n in d.distributions()]
        if len(names) != len(set(names)):
            raise ValueError(f"parameter names collide across dimensions: {names}")
        for dim in dimensions:
            if isinstance(base, PipelineConfig) and not isinstance(dim, ScopedDimension):
                raise ValueError(f"a code task's dimensions name their prompt; {dim.kind!r} does not")
            if isinstance(dim, ScopedDimension) and (
                not isinstance(base, PipelineConfig) or dim.prompt not in base.prompts
            ):
                raise ValueError(f"dimension of prompt {dim.prompt!r}, which this task does not have")
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
        """The space's dimension of type ``kind`` (``None``: it has none; a code task's dimensions are
        scoped, so only ``ScopedDimension`` is found there)."""
        return next((d for d in self.dimensions if isinstance(d, kind)), None)

    def instruction_dimensions(self) -> list[tuple[str | None, InstructionDimension]]:
        """The instruction dimension of a one-prompt task (prompt ``None``), or of each prompt of a code task,
        with its prompt's name; the parameter of each is :func:`instruction_param` of that name."""
        out: list[tuple[str | None, InstructionDimension]] = []
        for d in self.dimensions:
            if isinstance(d, InstructionDimension):
                out.append((None, d))
            elif isinstance(d, ScopedDimension) and isinstance(d.inner, InstructionDimension):
                out.append((d.prompt, d.inner))
        return out

    def region(self) -> dict[str, list[Any]]:
        """Per parameter, the values a practitioner searches first (see :meth:`Dimension.region`); parameters
        not named are free."""
        return {n: v for d in self.dimensions for n, v in d.region().items()}

    def config(self, params: dict[str, Any]) -> TaskConfig:
        """The candidate a trial's params stand for (missing params take the baseline value)."""
        full = self.baseline() | params
        config = self.base
        for dim in self.dimensions:
            values = {n: full[n] for n in dim.distributions()}
            if isinstance(dim, ScopedDimension) and isinstance(config, PipelineConfig):
                inner = dim.apply(config.prompt(dim.prompt), values)
                origin = {**config.origin, **{f"{dim.prompt}.{k}": v for k, v in inner.origin.items()}}
                config = config.with_prompt(dim.prompt, inner).model_copy(update={"origin": origin})
            elif isinstance(config, PromptConfig):
                config = dim.apply(config, values)
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
        return cls(candidate_from_json(data["base"]), tuple(dimension_from_json(d) for d in data["dimensions"]))
