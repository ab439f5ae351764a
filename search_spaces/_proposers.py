"""Instruction proposers: a model writes new instructions, grounded on train examples and on the cases
the current best configuration gets wrong."""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from promptopt.models import ModelRequest, ModelResponse

Call = Callable[[ModelRequest, int], Awaitable[ModelResponse]]
"""One budgeted, cached model call: (request, repeat index) -> response."""


class InstructionProposer(abc.ABC):
    """Contract: ``propose`` returns at most ``n`` distinct, cleaned instructions (possibly fewer when the
    model writes unusable text); every model call goes through ``call`` so it is budgeted and cached; each
    answer left out is in ``rejected`` afterwards as (text, reason)."""

    rejected: list[tuple[str, str]]

    def keep(self, raw: str, text: str | None, found: list[str], seen: set[str]) -> None:
        """Add ``text`` (``raw`` cleaned; ``None``: unusable) to ``found`` unless ``seen`` has it; what is left
        out goes to ``rejected`` with its reason."""
        if text is None:
            self.rejected.append((raw.strip()[:2000], unusable(raw)))
        elif text.lower() in seen:
            self.rejected.append((text, "same as another candidate"))
        else:
            seen.add(text.lower())
            found.append(text)

    @abc.abstractmethod
    async def propose(
        self,
        *,
        instruction: str,
        examples: list[tuple[dict[str, Any], str]],
        failures: list[tuple[dict[str, Any], str, str]],
        labels: tuple[str, ...] | None,
        n: int,
        call: Call,
    ) -> list[str]: ...


def answer_format_hint(labels: tuple[str, ...] | None) -> str:
    if not labels:
        return ""
    return "Answer with one word: " + ", ".join(labels[:-1]) + f" or {labels[-1]}." if len(labels) > 1 else ""


def unusable(text: str) -> str:
    """Why :func:`clean_instruction` left ``text`` out."""
    core = text.strip()
    if "{{" in core:
        return "has a placeholder"
    return "too short (under 15 characters)" if len(core) < 15 else "too long (over 400 characters)"


def clean_instruction(text: str, labels: tuple[str, ...] | None) -> str | None:
    """First one or two sentences of a model's answer, without quotes or a leading "Instruction:"; the label
    list is appended when the instruction does not name every label (a small model needs the answer form)."""
    text = text.strip().split("\n\n")[0].strip()
    text = re.sub(r"^(new |better |improved )?instruction\s*[:\-]\s*", "", text, flags=re.I).strip(" \"'`*")
    sentences = re.split(r"(?<=[.!?])\s+", text)
    text = " ".join(sentences[:2]).strip()
    if len(text) < 15 or len(text) > 400 or "{{" in text:
        return None
    if labels and not all(label.lower() in text.lower() for label in labels):
        text = f"{text} {answer_format_hint(labels)}"
    return text


def _show(inp: dict[str, Any]) -> str:
    if len(inp) == 1:
        return str(next(iter(inp.values())))[:300]
    return json.dumps(inp, ensure_ascii=False)[:300]


class GroundedProposer(InstructionProposer):
    """Asks a proposer model (litellm; the local model on the embedded default) for better instructions,
    showing it correct train examples and the current best's mistakes. Each proposal is a separate sampled
    call (temperature ``temperature``, repeat index = proposal number, so the cache keeps them apart)."""

    def __init__(self, model: str, *, temperature: float = 0.9, max_tokens: int = 80, attempts: int = 3) -> None:
        self.model, self.temperature, self.max_tokens, self.attempts = model, temperature, max_tokens, attempts

    def _messages(
        self,
        instruction: str,
        examples: list[tuple[dict[str, Any], str]],
        failures: list[tuple[dict[str, Any], str, str]],
        labels: tuple[str, ...] | None,
        variant: int,
    ) -> list[dict[str, str]]:
        lines = [f'The current instruction for a task is: "{instruction}"', "", "Examples of the task:"]
        lines += [f"- Input: {_show(i)}\n  Correct answer: {y}" for i, y in examples]
        if failures:
            lines += ["", "The current instruction gets these wrong:"]
            lines += [f"- Input: {_show(i)}\n  Model answered: {o[:60]!r}; correct: {y}" for i, o, y in failures]
        if labels:
            lines += ["", f"The answer is always one of: {', '.join(labels)}."]
        focus = ["clear and direct", "precise about the answer format", "like an expert's brief", "short and simple"][
            variant % 4
        ]
        lines += ["", f"Write one new instruction for this task, {focus}. Reply with the instruction only."]
        return [
            {"role": "system", "content": "You write instructions for language models."},
            {"role": "user", "content": "\n".join(lines)},
        ]

    async def propose(
        self,
        *,
        instruction: str,
        examples: list[tuple[dict[str, Any], str]],
        failures: list[tuple[dict[str, Any], str, str]],
        labels: tuple[str, ...] | None,
        n: int,
        call: Call,
    ) -> list[str]:
        found: list[str] = []
        seen, self.rejected = {instruction.strip().lower()}, []
        for i in range(n * self.attempts):
            if len(found) >= n:
                break
            request = ModelRequest(
                model=self.model,
                messages=tuple(self._messages(instruction, examples, failures, labels, i)),
                params={"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": i},
            )
            raw = (await call(request, i)).text
            self.keep(raw, clean_instruction(raw, labels), found, seen)
        return found


PROPOSERS = ("grounded", "dspy")


def make_proposer(name: str, model: str) -> InstructionProposer:
    """The proposer a spec names in ``search.instructions.proposer``, writing with ``model``.

    Example::

        make_proposer("dspy", "local/smollm2-135m")  # DSPy's proposal signature; dspy is imported on first use
    """
    if name == "grounded":
        return GroundedProposer(model)
    if name == "dspy":
        from promptopt.search_spaces._dspy_proposer import DspyProposer

        return DspyProposer(model)
    raise ValueError(f"unknown proposer {name!r}; expected one of {PROPOSERS}")


class ReflectiveProposer:
    """Rewrites a parent instruction from what the search has learned (GEPA's reflection, OPRO's trajectory):
    the earlier instructions with their validation scores, worst first so the best sits next to the question,
    and the parent's mistakes on train cases (input, its answer, the expected one). One sampled call per
    rewrite, through ``call`` (budgeted, cached; the repeat index keeps generations apart in the cache).
    The answer is cleaned (:func:`clean_instruction`) and left to the caller to check."""

    def __init__(self, model: str, *, temperature: float = 0.7, max_tokens: int = 160) -> None:
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens

    def messages(
        self,
        parent: str,
        trajectory: list[tuple[str, float]],
        failures: list[tuple[dict[str, Any], str, str]],
        labels: tuple[str, ...] | None,
    ) -> list[dict[str, str]]:
        lines = ["Instructions tried so far for a task, with their accuracy (higher is better):"]
        lines += [f"- ({score:.2f}) {text}" for text, score in sorted(trajectory, key=lambda t: t[1])]
        lines += ["", f'The instruction to improve: "{parent}"', "", "It gets these cases wrong:"]
        lines += [f"- Input: {_show(i)}\n  Answered: {o[:60]!r}; correct: {y}" for i, o, y in failures]
        if labels:
            lines += ["", f"The answer is always one of: {', '.join(labels)}."]
        lines += [
            "",
            "Write one better instruction that would get these cases right and keep the others right. "
            "Name every possible answer. Reply with the instruction only.",
        ]
        return [
            {"role": "system", "content": "You improve instructions for language models."},
            {"role": "user", "content": "\n".join(lines)},
        ]

    async def rewrite(
        self,
        *,
        parent: str,
        trajectory: list[tuple[str, float]],
        failures: list[tuple[dict[str, Any], str, str]],
        labels: tuple[str, ...] | None,
        call: Call,
        repeat: int,
    ) -> str:
        request = ModelRequest(
            model=self.model,
            messages=tuple(self.messages(parent, trajectory, failures, labels)),
            params={"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": repeat},
        )
        text = (await call(request, repeat)).text
        return clean_instruction(text, labels) or text.strip()
