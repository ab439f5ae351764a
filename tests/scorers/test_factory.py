"""build_scorers: one scorer per spec entry, in order, and clear errors for entries it cannot build."""

import pytest

from promptopt.errors import InputError
from promptopt.models._fake import ScriptedBackend
from promptopt.scorers import (
    ContainsScorer,
    CustomScorer,
    EmbeddingScorer,
    ExactMatchScorer,
    JsonFieldScorer,
    JsonValidScorer,
    LevenshteinScorer,
    LLMJudgeScorer,
    NumericScorer,
    RegexScorer,
    build_scorers,
)
from tests.scorers.helpers import HERE, spec_of

JUDGE = {"type": "llm_judge", "model": "m", "prompt": "{{output}}", "choices": {"ok": 1, "bad": 0}}


def test_builds_every_type_in_order():
    entries = [
        {"type": "exact_match"},
        {"type": "contains"},
        {"type": "levenshtein"},
        {"type": "regex", "pattern": "x"},
        {"type": "json_valid"},
        {"type": "json_field", "fields": ["a"]},
        {"type": "numeric"},
        {"type": "embedding"},
        JUDGE,
        {"type": "custom", "function": "m:f"},
    ]
    scorers = build_scorers([spec_of(e) for e in entries], base_dir=HERE, backend=ScriptedBackend(str))
    assert [type(s) for s in scorers] == [
        ExactMatchScorer,
        ContainsScorer,
        LevenshteinScorer,
        RegexScorer,
        JsonValidScorer,
        JsonFieldScorer,
        NumericScorer,
        EmbeddingScorer,
        LLMJudgeScorer,
        CustomScorer,
    ]
    assert [s.name for s in scorers][:2] == ["exact_match", "contains"]


def test_a_judge_without_a_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        build_scorers([spec_of({"type": "exact_match"}), spec_of(JUDGE)], base_dir=HERE, backend=None)


def test_no_backend_is_fine_without_a_judge():
    assert len(build_scorers([spec_of({"type": "exact_match"})], base_dir=HERE, backend=None)) == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**JUDGE, "prompt": "{{output"}, "template syntax error"),
        ({"type": "json_field", "fields": []}, "at least one field"),
    ],
)
def test_entries_that_cannot_be_built_name_the_file_and_entry(entry, message):
    with pytest.raises(InputError, match=message) as info:
        build_scorers(
            [spec_of({"type": "exact_match"}), spec_of(entry)],
            base_dir=HERE,
            backend=ScriptedBackend(str),
            source="exp.yaml",
        )
    assert (info.value.file, info.value.field) == ("exp.yaml", "scorers[1]")
