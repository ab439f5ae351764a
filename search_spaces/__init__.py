"""Search-space dimensions (typed, JSON round-trip) and the instruction proposers that fill them."""

from promptopt.search_spaces._base import Dimension
from promptopt.search_spaces._dimensions import (
    ConstrainedDimension,
    FineTuneDimension,
    InstructionDimension,
    MaxTokensDimension,
    ModelDimension,
    TemperatureDimension,
)
from promptopt.search_spaces._dspy_proposer import DspyProposer
from promptopt.search_spaces._fewshot import FewShotDimension, select_examples
from promptopt.search_spaces._proposers import (
    PROPOSERS,
    GroundedProposer,
    InstructionProposer,
    clean_instruction,
    make_proposer,
)
from promptopt.search_spaces._space import SearchSpace, dimension_from_json

__all__ = [
    "PROPOSERS",
    "ConstrainedDimension",
    "Dimension",
    "DspyProposer",
    "FewShotDimension",
    "FineTuneDimension",
    "GroundedProposer",
    "InstructionDimension",
    "InstructionProposer",
    "MaxTokensDimension",
    "ModelDimension",
    "SearchSpace",
    "TemperatureDimension",
    "clean_instruction",
    "dimension_from_json",
    "make_proposer",
    "select_examples",
]
