"""Output parsing: raw text, one label out of a list, or JSON (optionally checked against a schema).

A small model rarely answers with the bare label ("The sentiment of this review is positive."), so a label
is found robustly: an exact answer first, else the earliest whole-word mention of any label.
"""

from __future__ import annotations

import json
import re
from typing import Any

from promptopt.spec import OutputSpec

_EDGE = re.compile(r"^[\s\"'`*.:;,!()\[\]]+|[\s\"'`*.:;,!()\[\]]+$")


def _norm(text: str) -> str:
    return " ".join(_EDGE.sub("", text).lower().split())


def parse_label(text: str, labels: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The label ``text`` answers with and no error, or ``None`` and why none was found.

    An exact answer wins (ignoring case, spacing and surrounding quotes or punctuation); otherwise the earliest
    whole-word mention of a label (the longer label where two start at the same place). A label inside a
    hyphenated word does not count.

    Example:
        >>> parse_label("Positive.", ("positive", "negative"))
        ('positive', None)
        >>> parse_label("The sentiment of this review is negative, clearly.", ("positive", "negative"))
        ('negative', None)
        >>> parse_label("It is non-negative.", ("positive", "negative"))
        (None, "no label of ['positive', 'negative'] in the output")
    """
    answer = _norm(text)
    by_norm = {_norm(label): label for label in labels}
    if answer in by_norm:
        return by_norm[answer], None
    best: tuple[int, int, str] | None = None
    lowered = text.lower()
    for key, label in by_norm.items():
        match = re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", lowered)
        if match and (best is None or (match.start(), -len(key)) < best[:2]):
            best = (match.start(), -len(key), label)
    if best is None:
        return None, f"no label of {list(labels)} in the output"
    return best[2], None


def _extract_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        return json.loads(fenced.group(1))
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise json.JSONDecodeError("no JSON object or array", text, 0)
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value


def parse_json(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    try:
        value = _extract_json(text)
    except json.JSONDecodeError as exc:
        return None, f"output is not JSON: {exc.msg}"
    if schema is not None:
        import jsonschema

        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            return value, f"JSON does not match the schema: {exc.message}"
    return value, None


def parse_output(text: str, output: OutputSpec) -> tuple[Any, str | None]:
    """Return ``(parsed, parse_error)``. A parse error is a wrong answer, not a failed call."""
    if output.type == "label":
        assert output.labels is not None
        return parse_label(text, output.labels)
    if output.type == "json":
        return parse_json(text, output.json_schema)
    return text.strip(), None
