"""Custom scorer: the user's ``module:function``, run out of process so that it can fail only its row."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from promptopt.errors import ScorerError
from promptopt.scorers._base import ScoreInput, ScoreResult
from promptopt.scorers._common import SpecScorer
from promptopt.scorers._custom_pool import WorkerPool
from promptopt.spec import CustomSpec


class CustomScorer(SpecScorer):
    """Calls the spec's ``module:function`` with keyword arguments ``input``, ``output``, ``parsed``,
    ``expected``, ``metadata`` and ``trace`` (or the subset it declares) in a worker process.

    ``trace`` is a list of plain dicts, one per prompt call of a code task in call order, each a
    :class:`promptopt.tasks.Span` in JSON form (``span.model_dump(mode="json")``: keys ``prompt``, ``input``,
    ``messages``, ``output``, ``parsed``, ``tool_calls``, ``error``, ...; lists, not tuples; a value that is
    not JSON becomes its ``str``). Workers import only the standard library, so they get no ``Span`` objects.
    A one-prompt task's trace is ``[]``.

    The function returns a float in [0, 1] or a bool. Anything else, an exception, a timeout or a crash is a
    :class:`ScorerError` on that row. Call :meth:`aclose` to stop the workers.

    Args:
        spec: The scorer's spec entry.
        base_dir: Folder the module is imported from (the spec's folder).
        workers: Size of the process pool; defaults to the number of CPUs, at most 4.
    """

    def __init__(self, spec: CustomSpec, *, base_dir: Path, workers: int | None = None) -> None:
        super().__init__(spec)
        self.needs_expected = False  # the function decides what it reads
        self._function, self._timeout_s = spec.function, spec.timeout_s
        size = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool = WorkerPool(Path(base_dir).resolve(), spec.function, size=size)

    async def score(self, row: ScoreInput) -> ScoreResult:
        kwargs = {
            "input": row.input,
            "output": row.output,
            "parsed": row.parsed,
            "expected": row.expected,
            "metadata": row.metadata,
            "trace": [span.model_dump(mode="json", fallback=str) for span in row.trace],
        }
        value = await self._pool.call(kwargs, self._timeout_s)
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            raise ScorerError(f"custom scorer {self._function} returned {value!r}; it must lie in [0, 1]")
        return ScoreResult(value=value)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._pool.close)
