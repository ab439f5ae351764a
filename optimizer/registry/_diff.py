"""Text diff of two prompt versions: what a reviewer reads before moving a label. A code task's bundle is
diffed as its function, then prompt by prompt."""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

from promptopt.config import PipelineConfig, PromptConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from promptopt.config import TaskConfig
    from promptopt.registry._values import PromptVersion

_PARAMETERS = ("model", "params", "output", "constrained", "tools", "response_format")
_ONE = ""  # the part name of a one-prompt version


def _template(config: PromptConfig | None) -> list[str]:
    lines: list[str] = []
    for message in config.messages if config else ():
        lines.append(f"[{message.role}]")
        lines += message.content.splitlines() or [""]
    return lines


def _examples(config: PromptConfig | None) -> list[str]:
    lines: list[str] = []
    for number, example in enumerate(config.examples if config else (), start=1):
        lines.append(f"# example {number}")
        lines.append(f"input: {json.dumps(example.input, ensure_ascii=False, sort_keys=True)}")
        lines += [f"output: {line}" for line in example.output.splitlines() or [""]]
    return lines


def _parameters(config: PromptConfig | None) -> list[str]:
    if config is None:
        return []
    dumped = config.model_dump(mode="json", by_alias=True)
    return json.dumps({k: dumped[k] for k in _PARAMETERS}, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _code(config: TaskConfig) -> list[str]:
    """A bundle's function, code hash and return-value parsing (nothing for one prompt)."""
    if not isinstance(config, PipelineConfig):
        return []
    output = json.dumps(config.output.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False)
    return [f"function: {config.function}", f"code_hash: {config.code_hash}", f"output: {output}"]


def _parts(config: TaskConfig) -> dict[str, PromptConfig]:
    return dict(config.prompts) if isinstance(config, PipelineConfig) else {_ONE: config}


def _score(name: str, old: float | None, new: float | None) -> str | None:
    if old == new:
        return None
    if old is None or new is None:
        return f"{name}: {_fmt(old)} -> {_fmt(new)}"
    return f"{name}: {old:.4f} -> {new:.4f} ({new - old:+.4f})"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _unified(a: PromptVersion, b: PromptVersion, section: str, old: list[str], new: list[str]) -> list[str]:
    return list(
        difflib.unified_diff(
            old,
            new,
            fromfile=f"{a.name} v{a.version} {section}",
            tofile=f"{b.name} v{b.version} {section}",
            lineterm="",
        )
    )


def version_diff(a: PromptVersion, b: PromptVersion) -> str:
    """Unified diffs of the template, the examples and the parameters, then the score changes. For a code
    task's bundle the function (import path, code hash, output) comes first, then those three sections for
    each prompt (``prompt answer template``...); a prompt only one side has shows as wholly added or removed.

    Returns "" when the two versions are the same one; identical sections are left out.
    """
    out = _unified(a, b, "function", _code(a.config), _code(b.config))
    old, new = _parts(a.config), _parts(b.config)
    sections: tuple[tuple[str, Callable[[PromptConfig | None], list[str]]], ...] = (
        ("template", _template),
        ("examples", _examples),
        ("parameters", _parameters),
    )
    for part in dict.fromkeys([*old, *new]):
        for section, lines in sections:
            title = section if part == _ONE else f"prompt {part} {section}"
            out += _unified(a, b, title, lines(old.get(part)), lines(new.get(part)))
    for field in ("validation_score", "test_score"):
        line = _score(field, getattr(a.lineage, field), getattr(b.lineage, field))
        if line is not None:
            out.append(line)
    if not out and a.version != b.version:
        out.append(f"v{a.version} and v{b.version} differ only in their lineage")
    return "\n".join(out)
