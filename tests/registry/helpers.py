"""Builders shared by the registry, SDK and server tests: prompt configs and scripted eval results."""

from __future__ import annotations

from typing import Any

from promptopt.config import Example, PipelineConfig, PromptConfig
from promptopt.engine import EvalResult, EvalSummary, RowResult
from promptopt.spec import Decoding, Message, OutputSpec


def config(instruction: str = "Classify the review.", *, model: str = "openai/fake", **fields: Any) -> PromptConfig:
    """A two-message prompt (system instruction, user ``{{text}}``) with whatever else ``fields`` set."""
    messages = (Message(role="system", content=instruction), Message(role="user", content="Review: {{text}}"))
    return PromptConfig(messages=messages, model=model, **fields)


def rich_config() -> PromptConfig:
    """A config that uses every part of a version: examples, decoding extras, tools, response format."""
    return config(
        "Answer in JSON.",
        params=Decoding(
            temperature=0.3,
            max_tokens=64,
            top_p=0.9,
            seed=7,
            stop=("\n\n",),
            extra={"api_base": "http://127.0.0.1:9/v1"},
        ),
        examples=(Example(input={"text": "great"}, output='{"label": "positive"}'),),
        tools=({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},),
        response_format={"type": "json_object"},
    )


def bundle(
    answer: str = "Answer from the context.", *, code_hash: str = "c" * 64, answer_model: str = "openai/fake-large"
) -> PipelineConfig:
    """A code task's candidate: ``qa.pipeline:answer`` calls ``rewrite`` (``{{question}}``) then ``answer``
    (``{{context}}``, ``{{question}}``, with an example); ``answer`` sets its instruction."""
    rewrite = PromptConfig(
        messages=(
            Message(role="system", content="Rewrite the question as a search query."),
            Message(role="user", content="Question: {{question}}"),
        ),
        model="openai/fake",
        params=Decoding(max_tokens=32),
    )
    answering = PromptConfig(
        messages=(
            Message(role="system", content=answer),
            Message(role="user", content="Context: {{context}}\nQuestion: {{question}}"),
        ),
        model=answer_model,
        params=Decoding(temperature=0.2, extra={"api_base": "http://127.0.0.1:9/v1"}),
        examples=(Example(input={"context": "Paris is in France.", "question": "Where is Paris?"}, output="France"),),
    )
    return PipelineConfig(
        function="qa.pipeline:answer",
        code_hash=code_hash,
        prompts={"rewrite": rewrite, "answer": answering},
        output=OutputSpec(type="label", labels=("yes", "no")),
    )


def eval_result(
    scores: dict[str, float | None],
    *,
    split: str = "test",
    dataset_hash: str = "d" * 64,
    status: str = "finished",
    config_hash: str = "c",
) -> EvalResult:
    """A finished eval whose case ``k`` scored ``scores[k]`` (``None``: the row failed)."""
    rows = tuple(
        RowResult(
            case_id=case,
            input={"text": case},
            objective=value,
            scores={} if value is None else {"em": value},
            error="ModelCallError: boom" if value is None else None,
        )
        for case, value in scores.items()
    )
    summary = EvalSummary.from_rows(list(rows), ["em"], model_calls=len(rows), wall_s=0.1)
    return EvalResult(
        experiment_id="e" * 32,
        config_hash=config_hash,
        split=split,
        dataset_hash=dataset_hash,
        rows=rows,
        summary=summary,
        status=status,
    )
