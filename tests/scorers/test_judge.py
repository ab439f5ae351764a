"""The LLM judge on a scripted backend: what it sends, how answers map to choices, what it reports."""

import pytest

from promptopt.errors import ModelCallError, ScorerError
from promptopt.models._fake import ScriptedBackend
from promptopt.scorers import match_choice
from tests.scorers.helpers import row, score

SPEC = {
    "type": "llm_judge",
    "name": "judge",
    "model": "judge/small",
    "prompt": "Question: {{question}}\nAll input: {{input}}\nAnswer: {{output}}\nIs the answer correct?",
    "choices": {"correct": 1.0, "partly correct": 0.5, "wrong": 0.0},
}


@pytest.mark.parametrize(
    ("answer", "choice"),
    [
        ("correct", "correct"),
        ("  Correct. ", "correct"),
        ('"WRONG"', "wrong"),
        ("The answer is partly correct, not wrong", "partly correct"),
        ("It is wrong; a correct answer would be 4", "wrong"),
        ("incorrect", None),
        ("wrongly", None),
        ("", None),
    ],
)
def test_match_choice(answer, choice):
    assert match_choice(answer, ("correct", "partly correct", "wrong")) == choice


def test_sends_the_rendered_prompt_with_the_judge_model_params_and_constraint(build):
    backend = ScriptedBackend(lambda request: "Correct.", cost_per_call=0.002)
    scorer = build(SPEC, backend=backend)
    result = score(scorer, row("4", input={"question": "2+2?"}))
    assert result.value == 1.0
    (sent,) = backend.calls
    assert sent.model == "judge/small"
    assert sent.constraint.labels == ("correct", "partly correct", "wrong")
    assert sent.params == {"temperature": 0, "max_tokens": 8}
    prompt = 'Question: 2+2?\nAll input: {"question": "2+2?"}\nAnswer: 4\nIs the answer correct?'
    assert sent.messages == ({"role": "user", "content": prompt},)


def test_reports_the_judges_tokens_and_cost(build):
    backend = ScriptedBackend(lambda request: "partly correct", cost_per_call=0.002)
    result = score(build(SPEC, backend=backend), row("4", input={"question": "2+2?"}))
    assert result.value == 0.5
    assert result.completion_tokens == 2  # the fake counts words
    assert result.prompt_tokens == len(backend.calls[0].messages[0]["content"].split())
    assert result.cost_usd == 0.002


def test_spec_params_override_the_defaults(build):
    backend = ScriptedBackend(lambda request: "wrong")
    spec = {**SPEC, "params": {"max_tokens": 20, "seed": 1}}
    score(build(spec, backend=backend), row("5", input={"question": "2+2?"}))
    assert backend.calls[0].params == {"temperature": 0, "max_tokens": 20, "seed": 1}


def test_an_answer_naming_no_choice_is_an_error_not_a_zero(build):
    scorer = build(SPEC, backend=ScriptedBackend(lambda request: "I am not sure"))
    with pytest.raises(ScorerError, match="I am not sure"):
        score(scorer, row("4", input={"question": "2+2?"}))


def test_a_failed_call_is_a_scorer_error(build):
    scorer = build(SPEC, backend=ScriptedBackend(lambda r: ModelCallError("rate limited", retryable=True)))
    with pytest.raises(ScorerError, match="rate limited"):
        score(scorer, row("4", input={"question": "2+2?"}))


def test_a_prompt_variable_the_row_lacks_is_a_scorer_error(build):
    scorer = build(SPEC, backend=ScriptedBackend(lambda request: "correct"))
    with pytest.raises(ScorerError, match="question"):
        score(scorer, row("4", input={"text": "2+2?"}))


def test_needs_expected_only_when_the_prompt_reads_it(build):
    backend = ScriptedBackend(lambda request: "correct")
    assert build(SPEC, backend=backend).needs_expected is False
    with_ref = build({**SPEC, "prompt": "{{output}} vs {{expected}}"}, backend=backend)
    assert with_ref.needs_expected is True
    score(with_ref, row("4", {"answer": 4}))
    assert backend.calls[-1].messages[0]["content"] == '4 vs {"answer": 4}'


def test_output_cannot_be_shadowed_by_an_input_field(build):
    backend = ScriptedBackend(lambda request: "correct")
    scorer = build({**SPEC, "prompt": "{{output}}"}, backend=backend)
    score(scorer, row("model answer", input={"output": "x"}))
    assert backend.calls[0].messages[0]["content"] == "model answer"
