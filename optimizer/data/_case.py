"""Cases (dataset rows) and splits: immutable, content-hashed values."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def canonical_json(value: Any) -> str:
    """Stable JSON text used for every content hash in the package.

    Example:
        >>> canonical_json({"b": 1, "a": "é"})
        '{"a":"é","b":1}'
    """
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(value: Any, length: int = 64) -> str:
    """SHA-256 of :func:`canonical_json` of ``value`` in hex, its first ``length`` characters: equal values
    hash alike whatever the order of their keys.

    Example:
        >>> content_hash({"b": 1, "a": [1, 2]}, length=12) == content_hash({"a": [1, 2], "b": 1}, length=12)
        True
        >>> content_hash("positive", length=12)
        'ec67c5ca00e5'
    """
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


class Case(BaseModel):
    """One eval row: the template's input fields, the expected value and free-form metadata."""

    model_config = ConfigDict(frozen=True)
    id: str = Field(description="Stable id: a hash of input and expected, suffixed on duplicates.")
    input: dict[str, Any]
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Split(BaseModel):
    """A named, ordered list of cases and the hash of their content."""

    model_config = ConfigDict(frozen=True)
    name: str
    cases: tuple[Case, ...]

    @property
    def hash(self) -> str:
        return content_hash([[c.id, c.input, c.expected] for c in self.cases])

    def __len__(self) -> int:
        return len(self.cases)


class Dataset(BaseModel):
    """The splits of a spec's data. ``confirm`` (empty unless carved) holds train cases set aside before a
    search, on which its shortlist is scored again before the winner is chosen: the search never sees them."""

    model_config = ConfigDict(frozen=True)
    train: Split
    validation: Split
    test: Split
    confirm: Split = Split(name="confirm", cases=())

    def split(self, name: str) -> Split:
        if name not in ("train", "validation", "test", "confirm"):
            raise ValueError(f"unknown split {name!r}; expected train, validation, test or confirm")
        split: Split = getattr(self, name)
        return split

    def carve_confirmation(self, cases: int, *, seed: int) -> Dataset:
        """This dataset with ``cases`` train cases (a seeded sample, at most half of train) moved to ``confirm``."""
        n = min(cases, len(self.train) // 2)
        if n <= 0:
            return self
        picked = set(random.Random(f"confirm:{seed}").sample(range(len(self.train)), n))
        kept = tuple(c for i, c in enumerate(self.train.cases) if i not in picked)
        moved = tuple(c for i, c in enumerate(self.train.cases) if i in picked)
        return self.model_copy(
            update={
                "train": Split(name="train", cases=kept),
                "confirm": Split(name="confirm", cases=self.confirm.cases + moved),
            }
        )

    @property
    def hash(self) -> str:
        parts = [self.train.hash, self.validation.hash, self.test.hash]
        return content_hash(parts + [self.confirm.hash] if self.confirm.cases else parts)


def make_cases(records: list[dict[str, Any]]) -> tuple[Case, ...]:
    """Turn validated records into cases with stable ids (duplicates get ``-2``, ``-3``...)."""
    seen: dict[str, int] = {}
    cases = []
    for rec in records:
        base = content_hash([rec["input"], rec.get("expected")], 16)
        seen[base] = seen.get(base, 0) + 1
        cid = base if seen[base] == 1 else f"{base}-{seen[base]}"
        cases.append(Case(id=cid, input=rec["input"], expected=rec.get("expected"), metadata=rec.get("metadata") or {}))
    return tuple(cases)
