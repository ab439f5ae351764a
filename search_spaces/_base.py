"""The dimension seam: a typed, JSON round-tripping piece of the search space."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from promptopt.config import PromptConfig


class Dimension(abc.ABC):
    """Contract:

    * ``distributions()`` names the Optuna parameters this dimension owns (names unique across dimensions)
      and is the same on every call; values of a trial's params for them are JSON primitives.
    * ``baseline()`` returns params that make ``apply`` reproduce the spec's configuration unchanged.
    * ``apply(config, params)`` is pure: it returns a new :class:`PromptConfig` and never mutates.
    * ``to_json()`` / :func:`dimension_from_json` round-trip exactly.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def distributions(self) -> dict[str, BaseDistribution]: ...

    @abc.abstractmethod
    def baseline(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def apply(self, config: PromptConfig, params: dict[str, Any]) -> PromptConfig: ...

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]: ...

    def design(self) -> dict[str, Any]:
        """Params for a designed start: the value of this dimension most likely to help on its own (more
        examples, a constrained output), tried right after the baseline. ``{}`` (the default): the baseline's."""
        return {}

    def region(self) -> dict[str, list[Any]]:
        """The values a practitioner searches first, per parameter (a constrained output, the most examples):
        the guided sampler's ``region`` start stays inside them. ``{}`` (the default): every value."""
        return {}

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every parameter, for exhaustive search."""
        out: dict[str, list[Any]] = {}
        for name, dist in self.distributions().items():
            if isinstance(dist, CategoricalDistribution):
                out[name] = list(dist.choices)
            elif isinstance(dist, IntDistribution):
                out[name] = list(range(dist.low, dist.high + 1, dist.step))
            else:
                raise TypeError(f"{name}: only categorical and integer parameters can be searched exhaustively")
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dimension) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(str(self.to_json()))
