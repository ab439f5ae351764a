"""Building scorers from spec dicts the way the engine does, and running coroutines in tests."""

import asyncio
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from promptopt.scorers import ScoreInput, build_scorers
from promptopt.spec import ScorerSpec

HERE = Path(__file__).parent
SPEC = TypeAdapter(ScorerSpec)


def spec_of(data: dict[str, Any]) -> Any:
    return SPEC.validate_python(data)


def row(
    output: str, expected: Any = None, *, parsed: Any = None, input: dict | None = None, metadata: dict | None = None
) -> ScoreInput:
    return ScoreInput(input=input or {}, output=output, parsed=parsed, expected=expected, metadata=metadata or {})


def run(coro):
    return asyncio.run(coro)


def score(scorer, *rows):
    """Score rows one after another in one event loop; one value for one row, else a list."""

    async def go():
        return [await scorer.score(r) for r in rows]

    results = run(go())
    return results[0] if len(results) == 1 else results


def build_one(data: dict[str, Any], *, backend=None, base_dir: Path = HERE):
    return build_scorers([spec_of(data)], base_dir=base_dir, backend=backend)[0]
