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
from promptopt.search_spaces._fewshot import FewShotDimension, select_examples
from promptopt.search_spaces._proposers import GroundedProposer, InstructionProposer, clean_instruction
from promptopt.search_spaces._space import SearchSpace, dimension_from_json

__all__ = ["ConstrainedDimension", "Dimension", "FewShotDimension", "FineTuneDimension", "GroundedProposer",
           "InstructionDimension", "InstructionProposer", "MaxTokensDimension", "ModelDimension", "SearchSpace",
           "TemperatureDimension", "clean_instruction", "dimension_from_json", "select_examples"]
