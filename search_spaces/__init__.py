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
from promptopt.search_spaces._operators import OPERATORS, Edit, Rejected, check_instruction, data_edits
from promptopt.search_spaces._proposers import (
    PROPOSERS,
    GroundedProposer,
    InstructionProposer,
    clean_instruction,
    make_proposer,
)
from promptopt.search_spaces._space import SearchSpace, dimension_from_json

__all__ = [
    "OPERATORS",
    "PROPOSERS",
    "ConstrainedDimension",
    "Dimension",
    "DspyProposer",
    "Edit",
    "FewShotDimension",
    "FineTuneDimension",
    "GroundedProposer",
    "InstructionDimension",
    "InstructionProposer",
    "MaxTokensDimension",
    "ModelDimension",
    "Rejected",
    "SearchSpace",
    "TemperatureDimension",
    "check_instruction",
    "clean_instruction",
    "data_edits",
    "dimension_from_json",
    "make_proposer",
    "select_examples",
]
