"""Instruction edits built from the data, not written by a model: a 135M model writes unusable instructions
("This is the second instruction."), but the train split already says what the task is. Each operator turns
the spec's instruction into a candidate by adding what a practitioner would add first:

* ``format``: the answer form (one of the labels, one word);
* ``definitions``: each label with a short example input of it, drawn from train;
* ``role``: a line saying who answers and what the task is;
* ``summary``: the task summarised from the data (input fields and labels) in place of a vague instruction.

Candidates are deterministic for a seed, checked like proposals (:func:`check_instruction`), and recorded
with their operator as source (``operator:format`` ...). A proposer model, when the spec names a strong
one, writes on top of these (its proposals are added beside them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from promptopt.data import Case

OPERATORS = ("format", "definitions", "role", "summary")
MAX_CHARS = 600  # a longer instruction is refused: it crowds the prompt of a small model
EXAMPLE_CHARS = 60


@dataclass(frozen=True)
class Edit:
    """One candidate instruction and the operator that made it (``source``: ``operator:<name>``)."""

    text: str
    source: str


@dataclass(frozen=True)
class Rejected:
    """A candidate that was not added, and why."""

    text: str
    source: str
    reason: str


def check_instruction(text: str, labels: tuple[str, ...] | None) -> str | None:
    """Why ``text`` cannot be a candidate instruction (``None``: it can): empty, over :data:`MAX_CHARS`, with
    an unfilled placeholder, cut off mid-sentence, or not naming every label of a label task."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if len(stripped) > MAX_CHARS:
        return f"longer than {MAX_CHARS} characters"
    if "{{" in stripped or "}}" in stripped or ("<" in stripped and ">" in stripped):
        return "has a placeholder"
    if stripped[-1] not in ".!?:)\"'":
        return "truncated (does not end a sentence)"
    if labels and not all(label.lower() in stripped.lower() for label in labels):
        return "does not name every label"
    return None


def data_edits(
    instruction: str,
    train: tuple[Case, ...],
    labels: tuple[str, ...] | None,
    *,
    seed: int,
    operators: tuple[str, ...] = OPERATORS,
) -> tuple[list[Edit], list[Rejected]]:
    """The operators' candidates for ``instruction`` (the spec's), and those that failed the check.

    Example:
        >>> from promptopt.data import Case
        >>> train = (
        ...     Case(id="1", input={"text": "a gem"}, expected="positive"),
        ...     Case(id="2", input={"text": "dull"}, expected="negative"),
        ... )
        >>> edits, _ = data_edits("Is it good?", train, ("positive", "negative"), seed=0, operators=("format",))
        >>> edits[0].text
        'Is it good? Answer with exactly one of: positive, negative.'
    """
    made = {name: _OPERATORS[name](instruction, train, labels, random.Random(f"{seed}:{name}")) for name in operators}
    edits, rejected, seen = [], [], {instruction.strip()}
    for name, text in made.items():
        if text is None:
            continue
        source = f"operator:{name}"
        reason = check_instruction(text, labels) or ("same as another candidate" if text.strip() in seen else None)
        if reason:
            rejected.append(Rejected(text, source, reason))
        else:
            seen.add(text.strip())
            edits.append(Edit(text, source))
    return edits, rejected


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?:" else text + "."


def _format_line(labels: tuple[str, ...] | None) -> str:
    return f"Answer with exactly one of: {', '.join(labels)}." if labels else "Answer briefly, with the answer only."


def _fields(train: tuple[Case, ...]) -> list[str]:
    return sorted({k for c in train[:50] for k in c.input})


def _format(instruction: str, train: tuple[Case, ...], labels: tuple[str, ...] | None, rng: random.Random) -> str:
    return f"{_sentence(instruction)} {_format_line(labels)}".strip()


def _definitions(
    instruction: str, train: tuple[Case, ...], labels: tuple[str, ...] | None, rng: random.Random
) -> str | None:
    if not labels:
        return None
    parts = []
    for label in labels:
        of_label = [c for c in train if str(c.expected) == label and _short(c)]
        if not of_label:
            return None  # a label without an example in train cannot be defined from the data
        parts.append(f'{label} (e.g. "{_short(rng.choice(of_label))}")')
    return f"{_sentence(instruction)} The labels: {'; '.join(parts)}. {_format_line(labels)}"


def _short(case: Case) -> str:
    text = " ".join(str(v) for v in case.input.values()).replace('"', "'").replace("\n", " ").strip()
    if len(text) <= EXAMPLE_CHARS:
        return text
    cut = text[:EXAMPLE_CHARS].rsplit(" ", 1)[0]
    return cut + " ..." if cut else ""


def _role(instruction: str, train: tuple[Case, ...], labels: tuple[str, ...] | None, rng: random.Random) -> str:
    what = f"labels each {' and '.join(_fields(train)) or 'input'}" if labels else "answers each input"
    return f"You are a careful annotator who {what} correctly. {_sentence(instruction)} {_format_line(labels)}"


def _summary(instruction: str, train: tuple[Case, ...], labels: tuple[str, ...] | None, rng: random.Random) -> str:
    fields = " and ".join(_fields(train)) or "input"
    if labels:
        return f"Read the {fields} and decide which category it belongs to. {_format_line(labels)}"
    return f"Read the {fields} and give the expected answer. {_format_line(labels)}"


_OPERATORS = {"format": _format, "definitions": _definitions, "role": _role, "summary": _summary}

HINTS_LEAD = "Hard cases:"


def reflect_on_cases(
    parent: str, failures: list[tuple[dict[str, object], str, str]], labels: tuple[str, ...] | None
) -> str | None:
    """A child of ``parent`` written from the cases it got wrong on train (input, its answer, the expected
    answer), with no model: the parent's own hard-case line (if any) is replaced by one naming the expected
    answer of each failure, one per expected label first, as many as fit in :data:`MAX_CHARS`; the parent's
    answer-format line stays last. ``None`` when no failure has a short input to show.

    Example:
        >>> reflect_on_cases("Classify. Answer with exactly one of: a, b.", [({"t": "odd one"}, "a", "b")], ("a", "b"))
        'Classify. Hard cases: "odd one" is b. Answer with exactly one of: a, b.'
    """
    body, tail = _split_format(parent, labels)
    if HINTS_LEAD in body:
        body = body[: body.index(HINTS_LEAD)].strip()
    first: dict[str, tuple[dict[str, object], str, str]] = {}
    for failure in failures:
        first.setdefault(failure[2], failure)
    ordered = list(first.values()) + [f for f in failures if f not in first.values()]
    hints: list[str] = []
    for inp, _, expected in ordered:
        shown = _short(Case(id="hint", input=dict(inp), expected=expected))
        if not shown:
            continue
        hint = f'"{shown}" is {expected}'
        if hint in hints:
            continue
        text = _compose(body, [*hints, hint], tail)
        if len(text) > MAX_CHARS:
            break
        hints.append(hint)
    return _compose(body, hints, tail) if hints else None


LABELS_LEAD = "The labels:"


def reflect_on_definitions(
    parent: str,
    failures: list[tuple[dict[str, object], str, str]],
    train: tuple[Case, ...],
    labels: tuple[str, ...] | None,
    rng: random.Random,
) -> str | None:
    """A child of ``parent`` whose label definitions show the parent's mistakes: each label defined by a
    short input it got wrong (expected that label), else by a train example of the label; the parent's own
    definitions and hard-case line are replaced, its answer-format line stays last (added if it had none).
    ``None`` for a task without labels or when a label has no short example.

    Example:
        >>> train = (Case(id="1", input={"t": "fine"}, expected="a"), Case(id="2", input={"t": "bad"}, expected="b"))
        >>> reflect_on_definitions("Classify.", [({"t": "odd one"}, "a", "b")], train, ("a", "b"), random.Random(0))
        'Classify. The labels: a (e.g. "fine"); b (e.g. "odd one"). Answer with exactly one of: a, b.'
    """
    if not labels:
        return None
    body, tail = _split_format(parent, labels)
    for lead in (LABELS_LEAD, HINTS_LEAD):
        if lead in body:
            body = body[: body.index(lead)].strip()
    parts = []
    for label in labels:
        missed = [_short(Case(id="m", input=dict(i), expected=y)) for i, _, y in failures if y == label]
        shown = [m for m in missed if m] or [_short(c) for c in train if str(c.expected) == label and _short(c)]
        if not shown:
            return None
        parts.append(f'{label} (e.g. "{rng.choice(shown)}")')
    definitions = f"{LABELS_LEAD} {'; '.join(parts)}."
    return " ".join(p for p in (_sentence(body), definitions, tail or _format_line(labels)) if p)


def _split_format(text: str, labels: tuple[str, ...] | None) -> tuple[str, str]:
    """``text`` as (body, its answer-format line or "")."""
    body = text.strip()
    cut = body.rfind("Answer with exactly one of:") if labels else body.rfind(_format_line(labels))
    return (body[:cut].strip(), body[cut:].strip()) if cut > 0 else (body, "")


def _compose(body: str, hints: list[str], tail: str) -> str:
    return " ".join(p for p in (_sentence(body), f"{HINTS_LEAD} {'; '.join(hints)}." if hints else "", tail) if p)
