"""Text diff of two prompt versions: what a reviewer reads before moving a label."""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptopt.registry._values import PromptVersion

_PARAMETERS = ("model", "params", "output", "constrained", "tools", "response_format")


def _template(version: PromptVersion) -> list[str]:
    lines: list[str] = []
    for message in version.config.messages:
        lines.append(f"[{message.role}]")
        lines += message.content.splitlines() or [""]
    return lines


def _examples(version: PromptVersion) -> list[str]:
    lines: list[str] = []
    for number, example in enumerate(version.config.examples, start=1):
        lines.append(f"# example {number}")
        lines.append(f"input: {json.dumps(example.input, ensure_ascii=False, sort_keys=True)}")
        lines += [f"output: {line}" for line in example.output.splitlines() or [""]]
    return lines


def _parameters(version: PromptVersion) -> list[str]:
    dumped = version.config.model_dump(mode="json", by_alias=True)
    return json.dumps({k: dumped[k] for k in _PARAMETERS}, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _score(name: str, old: float | None, new: float | None) -> str | None:
    if old == new:
        return None
    if old is None or new is None:
        return f"{name}: {_fmt(old)} -> {_fmt(new)}"
    return f"{name}: {old:.4f} -> {new:.4f} ({new - old:+.4f})"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def version_diff(a: PromptVersion, b: PromptVersion) -> str:
    """Unified diffs of the template, the examples and the parameters, then the score changes.

    Returns "" when the two versions are the same one; identical sections are left out.
    """
    out: list[str] = []
    for section, lines in (("template", _template), ("examples", _examples), ("parameters", _parameters)):
        out += difflib.unified_diff(
            lines(a),
            lines(b),
            fromfile=f"{a.name} v{a.version} {section}",
            tofile=f"{b.name} v{b.version} {section}",
            lineterm="",
        )
    for field in ("validation_score", "test_score"):
        line = _score(field, getattr(a.lineage, field), getattr(b.lineage, field))
        if line is not None:
            out.append(line)
    if not out and a.version != b.version:
        out.append(f"v{a.version} and v{b.version} differ only in their lineage")
    return "\n".join(out)
