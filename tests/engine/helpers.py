"""Shared builders for engine tests: a tiny exact-match scorer and a split from labels."""

from __future__ import annotations

from promptopt.config import PromptConfig
from promptopt.data import Split, make_cases
from promptopt.scorers._base import ScoreInput, Scorer, ScoreResult
from promptopt.spec import Message, OutputSpec


class Exact(Scorer):
    def __init__(self, name: str = "exact", weight: float = 1.0) -> None:
        self.name, self.weight = name, weight

    async def score(self, row: ScoreInput) -> ScoreResult:
        return ScoreResult(value=float(row.parsed == row.expected))


def split_of(texts_labels: list[tuple[str, str]], name: str = "validation") -> Split:
    return Split(name=name, cases=make_cases([{"input": {"text": t}, "expected": y} for t, y in texts_labels]))


def label_config(**kw) -> PromptConfig:
    base = dict(
        messages=(
            Message(role="system", content="Say positive or negative."),
            Message(role="user", content="{{text}}"),
        ),
        model="fake/model",
        output=OutputSpec(type="label", labels=("positive", "negative")),
    )
    base.update(kw)
    return PromptConfig(**base)


def oracle(request) -> str:
    """Answers the truth when the review contains 'good', else 'negative'."""
    text = request.messages[-1]["content"]
    return "positive" if "good" in text else "negative"


REVIEWS = [(f"good film {i}", "positive") for i in range(6)] + [(f"bad film {i}", "negative") for i in range(6)]
