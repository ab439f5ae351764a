"""The spec: what a user writes (task, dataset, scorers, eval settings, search space, budget)."""

from promptopt.spec._load import LoadedSpec, load_spec, spec_from_data
from promptopt.spec._schema import (
    BudgetSpec,
    DatasetSpec,
    Decoding,
    EvalSettings,
    FewShotSearch,
    InstructionSearch,
    Message,
    OutputSpec,
    RegistrySettings,
    SearchSpec,
    Spec,
    SplitRatio,
    TaskSpec,
)
from promptopt.spec._scorers import (
    SCORER_TYPES,
    ContainsSpec,
    CustomSpec,
    EmbeddingSpec,
    ExactMatchSpec,
    JsonFieldSpec,
    JsonValidSpec,
    LevenshteinSpec,
    LLMJudgeSpec,
    Normalize,
    NumericSpec,
    RegexSpec,
    ScorerSpec,
    ScorerSpecBase,
)
from promptopt.spec._template import TemplateSyntaxProblem, render_template, template_variables

__all__ = [
    "SCORER_TYPES", "BudgetSpec", "ContainsSpec", "CustomSpec", "DatasetSpec", "Decoding", "EmbeddingSpec",
    "EvalSettings", "ExactMatchSpec", "FewShotSearch", "InstructionSearch", "JsonFieldSpec", "JsonValidSpec",
    "LLMJudgeSpec", "LevenshteinSpec", "LoadedSpec", "Message", "Normalize", "NumericSpec", "OutputSpec",
    "RegexSpec", "RegistrySettings", "ScorerSpec", "ScorerSpecBase", "SearchSpec", "Spec", "SplitRatio", "TaskSpec",
    "TemplateSyntaxProblem", "load_spec", "render_template", "spec_from_data", "template_variables"
]
