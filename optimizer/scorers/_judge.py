"""LLM-as-judge scorer: a model reads the row and answers one of the spec's choices, which maps to a score."""

from __future__ import annotations

import json
import re
from typing import Any

from promptopt.errors import ModelCallError, ScorerError
from promptopt.models import Constraint, ModelBackend, ModelRequest
from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer, as_text
from promptopt.spec import LLMJudgeSpec, render_template, template_variables

# A judge answers with one short label; greedy decoding keeps the verdict reproducible.
DEFAULT_JUDGE_PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": 8}
_EDGE = re.compile(r"^[\s\"'`*.:;,!?()\[\]]+|[\s\"'`*.:;,!?()\[\]]+$")


def _norm(text: str) -> str:
    return " ".join(_EDGE.sub("", text).casefold().split())


def match_choice(text: str, choices: tuple[str, ...]) -> str | None:
    """The choice a judge's answer names, or None.

    The whole answer equal to a choice (ignoring case, quotes and edge punctuation) wins; otherwise the
    earliest choice mentioned as a whole word, the longer one when two start at the same place.

    Example:
        >>> match_choice("The answer is: Yes.", ("yes", "no"))
        'yes'
    """
    by_norm = {_norm(choice): choice for choice in choices}
    if _norm(text) in by_norm:
        return by_norm[_norm(text)]
    folded = text.casefold()
    best: tuple[int, int, str] | None = None
    for key, choice in by_norm.items():
        found = re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", folded) if key else None
        if found and (best is None or (found.start(), -len(key)) < best[:2]):
            best = (found.start(), -len(key), choice)
    return None if best is None else best[2]


class LLMJudgeScorer(SpecScorer):
    """Asks a judge model through ``backend``; its tokens and cost are reported on the result.

    Args:
        spec: The scorer's spec entry.
        backend: The model backend the judge's call goes through (cache and budget wrap it, if any).

    Raises:
        ScorerError (from ``score``): the call failed, the prompt reads a variable the row lacks, or the
            answer names no choice. A judge that cannot decide is an error on the row, never a 0.
    """

    def __init__(self, spec: LLMJudgeSpec, *, backend: ModelBackend) -> None:
        super().__init__(spec)
        self._spec, self._backend = spec, backend
        self.needs_expected = "expected" in template_variables(spec.prompt)
        self._choices = tuple(spec.choices)
        self._params = {**DEFAULT_JUDGE_PARAMS, **spec.params}

    async def score(self, row: ScoreInput) -> ScoreResult:
        request = ModelRequest(
            model=self._spec.model,
            params=self._params,
            messages=({"role": "user", "content": self._render(row)},),
            constraint=Constraint(labels=self._choices),
        )
        try:
            response = await self._backend.complete(request)
        except ModelCallError as exc:
            raise ScorerError(f"judge {self.name!r}: the call to {self._spec.model} failed: {exc}") from exc
        choice = match_choice(response.text, self._choices)
        if choice is None:
            raise ScorerError(
                f"judge {self.name!r} answered {response.text[:200]!r}, which names none of "
                f"{list(self._choices)}; tighten the prompt or raise max_tokens"
            )
        return ScoreResult(
            value=self._spec.choices[choice],
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            cost_usd=response.cost_usd,
            detail=f"judge answered {choice!r}",
        )

    def _render(self, row: ScoreInput) -> str:
        if self.needs_expected and row.expected is None:
            raise ScorerError(f"judge {self.name!r} reads {{{{expected}}}}, but the row has none")
        # Input fields first, so a field called "output" cannot shadow the answer being judged.
        variables = {
            **row.input,
            "input": json.dumps(row.input, ensure_ascii=False, default=str),
            "output": row.output,
            "expected": "" if row.expected is None else as_text(row.expected),
        }
        try:
            return render_template(self._spec.prompt, variables)
        except KeyError as exc:
            raise ScorerError(
                f"judge {self.name!r}: the prompt reads {exc}, which the row does not have; "
                "it can read {{input}}, {{output}}, {{expected}} and the input fields"
            ) from exc
