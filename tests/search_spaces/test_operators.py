"""Instruction edits from the data: every operator's candidate names every label, ends a sentence, is
deterministic for a seed, draws definitions only from train, and a bad candidate is refused with its reason."""

from __future__ import annotations

import pytest

from promptopt.data import Case
from promptopt.search_spaces import OPERATORS, check_instruction, data_edits

LABELS = ("positive", "negative")
TRAIN = tuple(
    Case(id=str(i), input={"text": text}, expected=label)
    for i, (text, label) in enumerate(
        [
            ("a gorgeous, moving film", "positive"),
            ("dull and far too long", "negative"),
            ("the best cast of the year", "positive"),
            ("I walked out", "negative"),
        ]
    )
)


def test_every_operator_makes_a_checked_candidate_that_names_every_label():
    edits, rejected = data_edits("Is the review good?", TRAIN, LABELS, seed=0)
    assert [e.source for e in edits] == [f"operator:{name}" for name in OPERATORS] and rejected == []
    for edit in edits:
        assert check_instruction(edit.text, LABELS) is None
        assert all(label in edit.text for label in LABELS)


def test_definitions_quote_train_examples_of_each_label():
    [edit], _ = data_edits("Is the review good?", TRAIN, LABELS, seed=3, operators=("definitions",))
    texts = {c.input["text"]: c.expected for c in TRAIN}
    quoted = [part.split('"')[1] for part in edit.text.split("(e.g. ")[1:]]
    assert [texts[q] for q in quoted] == list(LABELS)  # one example per label, of that label


def test_the_same_seed_gives_the_same_candidates_and_another_may_not():
    first = data_edits("Classify.", TRAIN, LABELS, seed=1)[0]
    assert data_edits("Classify.", TRAIN, LABELS, seed=1)[0] == first
    others = {data_edits("Classify.", TRAIN, LABELS, seed=s, operators=("definitions",))[0][0].text for s in range(8)}
    assert len(others) > 1  # the examples are drawn with the seed


def test_a_label_without_a_train_example_gets_no_definitions():
    edits, rejected = data_edits(
        "Classify.", TRAIN, ("positive", "negative", "mixed"), seed=0, operators=("definitions",)
    )
    assert edits == [] and rejected == []


def test_text_tasks_get_a_format_line_without_labels():
    [edit], _ = data_edits("Summarise the text", TRAIN, None, seed=0, operators=("format",))
    assert edit.text == "Summarise the text. Answer briefly, with the answer only."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Label it " + "very " * 200 + "carefully.", "longer than 600 characters"),
        ("Label {{text}} as positive or negative.", "has a placeholder"),
        ("Label the review as positive or", "truncated (does not end a sentence)"),
        ("Label the review as positive.", "does not name every label"),
    ],
)
def test_check_instruction_says_why_a_candidate_is_refused(text, reason):
    assert check_instruction(text, LABELS) == reason
