"""Reading JSONL and CSV case files, and splitting them; every problem names the file, line and field."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from promptopt.data._case import Case, Dataset, Split, make_cases
from promptopt.errors import InputError
from promptopt.spec import DatasetSpec, SplitRatio

_FORM = (
    'each row needs "input" (an object of template fields), optional "expected" and "metadata"; '
    "CSV uses columns input.<field>, expected, metadata"
)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL or CSV file into ``{"input", "expected", "metadata"}`` records."""
    if not path.is_file():
        raise InputError(str(path), "", "file not found or not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "", f"cannot read the file as UTF-8 text: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        records = _parse_jsonl(path, text)
    elif suffix == ".csv":
        records = _parse_csv(path, text)
    else:
        raise InputError(str(path), "", f"unsupported file type {suffix!r}; expected .jsonl or .csv")
    if not records:
        raise InputError(str(path), "", f"the dataset is empty; {_FORM}")
    return records


def _parse_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}", "", f"not valid JSON ({exc.msg}); one JSON object per line") from exc
        records.append(_check_row(f"{path}:{lineno}", row))
    return records


def _parse_csv(path: Path, text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    if not any(c.startswith("input.") for c in columns):
        raise InputError(str(path), "columns", f"no input.<field> column in {columns}; {_FORM}")
    records = []
    for lineno, row in enumerate(reader, start=2):
        rec: dict[str, Any] = {"input": {c[6:]: v for c, v in row.items() if c and c.startswith("input.")}}
        if "expected" in row:
            rec["expected"] = row["expected"]
        if row.get("metadata"):
            try:
                rec["metadata"] = json.loads(row["metadata"])
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}", "metadata", "must be a JSON object") from exc
        records.append(_check_row(f"{path}:{lineno}", rec))
    return records


def _check_row(where: str, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InputError(where, "", f"a row must be a JSON object; {_FORM}")
    unknown = set(row) - {"input", "expected", "metadata", "id"}
    if unknown:
        raise InputError(where, sorted(unknown)[0], f"unknown column; {_FORM}")
    if "input" not in row:
        raise InputError(where, "input", f"missing; {_FORM}")
    if not isinstance(row["input"], dict) or not row["input"]:
        raise InputError(where, "input", 'must be a non-empty object of template fields, e.g. {"text": "..."}')
    if "metadata" in row and row["metadata"] is not None and not isinstance(row["metadata"], dict):
        raise InputError(where, "metadata", "must be a JSON object")
    return row


def _sample(cases: tuple[Case, ...], limit: int | None, seed: int) -> tuple[Case, ...]:
    if limit is None or limit >= len(cases):
        return cases
    keep = sorted(random.Random(seed).sample(range(len(cases)), limit))
    return tuple(cases[i] for i in keep)


def load_dataset(spec: DatasetSpec, base_dir: Path, spec_file: str = "spec") -> Dataset:
    """Load the splits a dataset spec names; paths are relative to ``base_dir`` (the spec's folder)."""
    if spec.file:
        cases = make_cases(read_records(base_dir / spec.file))
        splits = _split_by_ratio(cases, spec)
    else:
        splits = {}
        for name in ("train", "validation", "test"):
            rel = getattr(spec, name)
            splits[name] = make_cases(read_records(base_dir / rel)) if rel else ()
        if spec.validation_from_train:
            splits["train"], splits["validation"] = _carve(splits["train"], spec.validation_from_train, spec.seed)
    limited = {n: _sample(c, spec.limit.get(n), spec.seed) for n, c in splits.items()}  # type: ignore[call-overload]
    if not limited["validation"]:
        raise InputError(spec_file, "dataset.split.validation", "the validation split is empty; give it a share")
    return Dataset(**{n: Split(name=n, cases=c) for n, c in limited.items()})


def _carve(cases: tuple[Case, ...], n: int, seed: int) -> tuple[tuple[Case, ...], tuple[Case, ...]]:
    """Move a seeded sample of ``n`` cases out of ``cases``: (the rest, the sample), both in file order."""
    picked = set(random.Random(f"validation:{seed}").sample(range(len(cases)), min(n, len(cases))))
    rest = tuple(c for i, c in enumerate(cases) if i not in picked)
    return rest, tuple(c for i, c in enumerate(cases) if i in picked)


def _split_by_ratio(cases: tuple[Case, ...], spec: DatasetSpec) -> dict[str, tuple[Case, ...]]:
    ratio = spec.split or SplitRatio()
    order = list(range(len(cases)))
    random.Random(spec.seed).shuffle(order)
    n_train = round(len(cases) * ratio.train)
    n_val = round(len(cases) * ratio.validation)
    parts = {"train": order[:n_train], "validation": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return {name: tuple(cases[i] for i in sorted(idx)) for name, idx in parts.items()}
