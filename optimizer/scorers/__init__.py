"""Scorers: a row in, a validated score in [0, 1] out. Build them from spec entries with ``build_scorers``."""

from promptopt.scorers._agent import StepsScorer, ToolCallScorer
from promptopt.scorers._base import ScoreInput, Scorer, ScoreResult
from promptopt.scorers._custom import CustomScorer
from promptopt.scorers._embedding import EmbeddingScorer
from promptopt.scorers._factory import build_scorer, build_scorers
from promptopt.scorers._json import JsonFieldScorer, JsonValidScorer
from promptopt.scorers._judge import DEFAULT_JUDGE_PARAMS, LLMJudgeScorer, match_choice
from promptopt.scorers._numeric import NumericScorer
from promptopt.scorers._regex import RegexScorer
from promptopt.scorers._text import ContainsScorer, ExactMatchScorer, LevenshteinScorer, normalize

__all__ = [
    "DEFAULT_JUDGE_PARAMS",
    "ContainsScorer",
    "CustomScorer",
    "EmbeddingScorer",
    "ExactMatchScorer",
    "JsonFieldScorer",
    "JsonValidScorer",
    "LLMJudgeScorer",
    "LevenshteinScorer",
    "NumericScorer",
    "RegexScorer",
    "ScoreInput",
    "ScoreResult",
    "Scorer",
    "StepsScorer",
    "ToolCallScorer",
    "build_scorer",
    "build_scorers",
    "match_choice",
    "normalize",
]
