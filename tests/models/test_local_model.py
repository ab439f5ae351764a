"""The embedded SmolLM2-135M through LiteLLMBackend: real generations, grammars, concurrency, prefix reuse."""

from __future__ import annotations

import asyncio
import json

import pytest

from promptopt.models import LOCAL_DEFAULT_MODEL, Constraint, LiteLLMBackend, ModelRequest
from promptopt.models._local import labels_gbnf

REVIEWS = (
    "A wonderful, moving film with superb acting.",
    "Dull, lifeless and far too long.",
    "I loved every minute of it.",
    "The worst movie I have seen this year.",
    "A charming and funny delight.",
    "Boring plot and terrible dialogue.",
    "An absolute masterpiece of modern cinema.",
    "I walked out after twenty minutes.",
    "Beautifully shot and deeply touching.",
    "A tedious mess from start to finish.",
)
LABELS = Constraint(labels=("positive", "negative"))
INSTRUCTION = "Classify the sentiment of the movie review as positive or negative. Answer with one word."
FEW_SHOT = (
    {"role": "user", "content": "a gorgeous, witty film"},
    {"role": "assistant", "content": "positive"},
    {"role": "user", "content": "flat and forgettable"},
    {"role": "assistant", "content": "negative"},
)


def _request(
    review: str,
    *,
    constraint: Constraint | None = None,
    instruction: str = INSTRUCTION,
    max_tokens: int = 8,
    few_shot: bool = True,
) -> ModelRequest:
    shots = FEW_SHOT if few_shot else ()
    messages = ({"role": "system", "content": instruction}, *shots, {"role": "user", "content": review})
    return ModelRequest(
        model=LOCAL_DEFAULT_MODEL,
        messages=messages,
        constraint=constraint,
        params={"temperature": 0, "max_tokens": max_tokens},
    )


def test_labels_grammar_escapes_quotes_and_backslashes():
    assert labels_gbnf(["yes", 'say "no"', "a\\b"]) == r'root ::= "yes" | "say \"no\"" | "a\\b"'


@pytest.mark.slow
def test_classification_returns_text_and_token_counts(run):
    response = run(LiteLLMBackend().complete(_request(REVIEWS[0], max_tokens=12)))
    assert response.text.strip()
    assert response.prompt_tokens > 40 and 0 < response.completion_tokens <= 12
    assert response.cost_usd == 0.0 and response.latency_s > 0


@pytest.mark.slow
def test_labels_constraint_gives_exactly_one_label(run):
    backend = LiteLLMBackend()
    # Zero-shot, the model answers in sentences; the grammar must still force a bare label.
    free = run(backend.complete(_request(REVIEWS[0], few_shot=False))).text
    assert free not in LABELS.labels
    texts = [run(backend.complete(_request(r, constraint=LABELS, few_shot=False))).text for r in REVIEWS]
    assert set(texts) <= {"positive", "negative"}, texts
    odd = Constraint(labels=('say "yes"', "back\\slash"))
    assert run(backend.complete(_request(REVIEWS[1], constraint=odd, few_shot=False))).text in odd.labels


@pytest.mark.slow
def test_concurrent_calls_answer_like_sequential_ones(run):
    backend = LiteLLMBackend()
    requests = [_request(review, max_tokens=10) for review in REVIEWS[:8]]
    sequential = [run(backend.complete(r)).text for r in requests]

    async def together() -> list[str]:
        return [r.text for r in await asyncio.gather(*(backend.complete(r) for r in requests))]

    assert run(together()) == sequential


@pytest.mark.slow
def test_json_schema_constraint_returns_valid_json(run):
    schema = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative"]}},
        "required": ["sentiment"],
    }
    response = run(
        LiteLLMBackend().complete(_request(REVIEWS[2], constraint=Constraint(json_schema=schema), max_tokens=40))
    )
    assert json.loads(response.text)["sentiment"] in ("positive", "negative")


@pytest.mark.slow
def test_prefix_reuse_with_interleaved_prompts_answers_like_a_fresh_context(run):
    # Two instructions interleaved: the second config must find its own prefix in the state cache.
    instructions = (INSTRUCTION, "Is this review positive or negative?")
    requests = [
        _request(review, instruction=instruction, max_tokens=6)
        for review in REVIEWS[:3]
        for instruction in instructions
    ]
    fresh = [run(LiteLLMBackend(local_prefix_reuse=False).complete(r)).text for r in requests]
    reused = [run(LiteLLMBackend(local_prefix_reuse=True).complete(r)).text for r in requests]
    assert reused == fresh


SCORED = Constraint(labels=("positive", "negative"), label_scores=True)


@pytest.mark.slow
def test_label_scores_name_every_label_and_answer_the_most_probable(run):
    response = run(LiteLLMBackend().complete(_request(REVIEWS[0], constraint=SCORED)))
    scores = response.label_logprobs
    assert scores is not None and set(scores) == {"positive", "negative"}
    assert all(lp < 0 for lp in scores.values())
    assert response.text == max(scores, key=scores.__getitem__)
    # Where the examples show the answer format, the most probable label is the grammar's greedy answer.
    greedy = [run(LiteLLMBackend().complete(_request(r, constraint=LABELS))).text for r in REVIEWS]
    scored = [run(LiteLLMBackend().complete(_request(r, constraint=SCORED))).text for r in REVIEWS]
    assert scored == greedy


@pytest.mark.slow
def test_a_label_of_several_tokens_sums_its_tokens_and_prefix_reuse_changes_no_score(run):
    labels = Constraint(labels=("thumbs up", "thumbs down", "unsure"), label_scores=True)  # a shared first token
    requests = [_request(r, constraint=labels, instruction="Thumbs up or thumbs down?") for r in REVIEWS[:4]]
    fresh = [run(LiteLLMBackend(local_prefix_reuse=False).complete(r)).label_logprobs for r in requests]
    reused = [run(LiteLLMBackend(local_prefix_reuse=True).complete(r)).label_logprobs for r in requests]
    for a, b in zip(fresh, reused, strict=True):
        assert a is not None and b is not None
        assert a == pytest.approx(b, abs=1e-3)
        assert a["thumbs up"] != a["thumbs down"]  # the second token tells them apart
    # A cloud model cannot score labels: refused before any request is sent.
    from promptopt.errors import ModelCallError

    with pytest.raises(ModelCallError, match="local models only"):
        run(LiteLLMBackend().complete(_request(REVIEWS[0], constraint=SCORED).model_copy(update={"model": "openai/x"})))
