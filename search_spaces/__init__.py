"""Search-space dimensions (typed, JSON round-trip) and the instruction proposers that fill them."""

from promptopt.search_spaces._base import Dimension
from promptopt.search_spaces._dimensions import (
    ConstrainedDimension,
    FineTuneDimension,
    InstructionDimension,
    MaxTokensDimension,
    ModelDimension,
    RejectedProposal,
    TemperatureDimension,
)
from promptopt.search_spaces._dspy_proposer import DspyProposer
from promptopt.search_spaces._fewshot import DEMO_ORDER, DemoSetDimension, FewShotDimension, demo_sets, select_examples
from promptopt.search_spaces._operators import (
    OPERATORS,
    Edit,
    Rejected,
    check_instruction,
    data_edits,
    reflect_on_cases,
    reflect_on_definitions,
)
from promptopt.search_spaces._proposers import (
    PROPOSERS,
    GroundedProposer,
    InstructionProposer,
    ReflectiveProposer,
    clean_instruction,
    make_proposer,
)
from promptopt.search_spaces._space import ScopedDimension, SearchSpace, dimension_from_json, instruction_param

__all__ = [
    "DEMO_ORDER",
    "DemoSetDimension",
    "RejectedProposal",
    "demo_sets",
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
    "ReflectiveProposer",
    "ScopedDimension",
    "SearchSpace",
    "TemperatureDimension",
    "check_instruction",
    "clean_instruction",
    "data_edits",
    "dimension_from_json",
    "instruction_param",
    "make_proposer",
    "reflect_on_cases",
    "reflect_on_definitions",
    "select_examples",
]
