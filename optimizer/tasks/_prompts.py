"""The ``prompts`` argument of a code task's function: each named prompt as an awaitable call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

from promptopt.tasks._trace import PromptReply


class PromptCaller(Protocol):
    """What the eval engine supplies: render prompt ``name`` with ``variables`` (plus ``history``, extra chat
    messages after the rendered ones: an agent's tool turns), send it, record the span, return the reply."""

    def __call__(
        self, name: str, variables: dict[str, Any], history: Sequence[dict[str, Any]]
    ) -> Awaitable[PromptReply]: ...


class BoundPrompt:
    """One named prompt of the task: ``await prompts.answer(question=...)``."""

    def __init__(self, name: str, caller: PromptCaller) -> None:
        self.name, self._caller = name, caller

    async def __call__(self, _history: Sequence[dict[str, Any]] = (), /, **variables: Any) -> PromptReply:
        """Render this prompt with ``variables`` and send it through the engine (cache, budget, limiter,
        retries, records). ``_history``: chat messages appended after the rendered ones (tool results)."""
        return await self._caller(self.name, variables, tuple(_history))

    def __repr__(self) -> str:
        return f"<prompt {self.name!r}>"


class Prompts:
    """The named prompts of a code task, by attribute (``prompts.answer``) or key (``prompts["answer"]``).

    Raises:
        KeyError / AttributeError: a name the spec's ``task.prompts`` does not define (the message lists them).
    """

    def __init__(self, names: Sequence[str], caller: PromptCaller) -> None:
        self._bound = {name: BoundPrompt(name, caller) for name in names}

    def __getitem__(self, name: str) -> BoundPrompt:
        try:
            return self._bound[name]
        except KeyError:
            raise KeyError(f"no prompt {name!r} in task.prompts; it defines {sorted(self._bound)}") from None

    def __getattr__(self, name: str) -> BoundPrompt:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._bound)

    def __len__(self) -> int:
        return len(self._bound)


TaskFunction = Callable[[dict[str, Any], Prompts], Any]
