"""Reading a spec file (safe YAML), mapping every validation problem to file + field + expected form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from promptopt.errors import InputError
from promptopt.spec._schema import Spec
from promptopt.spec._scorers import SCORER_TYPES


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from (relative data paths resolve against ``base_dir``)."""

    spec: Spec
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in SCORER_TYPES:
            continue  # discriminated-union tag: the index already names the entry
        else:
            out += f".{part}" if out else str(part)
    return out


def spec_from_data(data: Any, file: str) -> Spec:
    """Validate parsed YAML/JSON into a :class:`Spec`; raises :class:`InputError` on the first problem."""
    if not isinstance(data, dict):
        raise InputError(file, "", "a spec must be a mapping with keys task, dataset, scorers")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "union_tag_invalid":
            msg = f"unknown scorer type; expected one of {err['ctx']['expected_tags']}"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling; `optimize schema` lists the fields)"
        return_msg = f"{msg}" + (
            f" (got {err['input']!r})"
            if err["type"] not in ("missing", "extra_forbidden") and not isinstance(err.get("input"), dict)
            else ""
        )
        field = _field_path(err["loc"])
        if return_msg.startswith("@"):  # a check across fields names the field it is about: "@<field>: message"
            sub, _, return_msg = return_msg[1:].partition(": ")
            field = f"{field}.{sub}" if field else sub
        raise InputError(file, field, return_msg) from None


def load_spec(path: str | Path) -> LoadedSpec:
    """Load and validate a spec file.

    Raises:
        InputError: unreadable file, malformed YAML, or a field that does not validate.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "", f"cannot read the spec: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(str(path), "", f"malformed YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    return LoadedSpec(spec=spec_from_data(data, str(path)), path=path.resolve())
