"""DSPy's instruction proposal as a second :class:`InstructionProposer`.

The only module that imports dspy, and only when a proposal is asked for (``import promptopt`` stays light).
It runs the signature of DSPy's grounded proposer (``dspy.propose.grounded_proposer``: its
``GenerateSingleModuleInstruction`` and its ``TIPS``) on the task's instruction and train examples. DSPy talks
to a ``dspy.LM`` whose engine is :class:`_CallEngine`, so every request DSPy makes becomes a
:class:`ModelRequest` awaited through our ``call`` (budgeted, cached); DSPy's own cache and retries are off.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from promptopt.models import ModelRequest, ModelResponse
from promptopt.search_spaces._proposers import Call, InstructionProposer, _show, clean_instruction

log = logging.getLogger("promptopt.search_spaces")
DSPY_MODEL_NAME = "promptopt/call"
_MARKER = re.compile(r"\[\[\s*##\s*\w+\s*##\s*\]\]")
# "Proposed instruction:" and the like; narrower than DSPy's strip_prefix, which also eats "Judge the sentiment:"
_PREFIX = re.compile(r"^[\s*#\"']*(?:[\w'-]+\s+){0,3}instruction\s*[:\-]\s*", re.I)


def _text(content: Any) -> str:
    """Text of an lm15 system prompt or message (a string, or parts that carry ``text``)."""
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(getattr(part, "text", "") or "" for part in content)


class _CallEngine:
    """A DSPy engine (``complete(Request) -> Response``) that sends each request through our ``call``.

    ``repeat`` is the proposal number, so samples of the same prompt stay apart in our cache. The first error
    ``call`` raised is kept in ``error``: DSPy wraps engine errors in its own types, and the proposer re-raises
    ours (a budget refusal must reach the search loop as :class:`~promptopt.errors.BudgetExceeded`).
    """

    def __init__(self, call: Call, model: str, repeat: int) -> None:
        self.call, self.model, self.repeat = call, model, repeat
        self.error: Exception | None = None

    def request(self, request: Any) -> ModelRequest:
        c = request.config
        params = {
            k: v
            for k, v in (
                ("temperature", c.temperature),
                ("max_tokens", c.max_tokens),
                ("top_p", c.top_p),
                ("seed", c.seed),
            )
            if v is not None
        }
        if c.stop:
            params["stop"] = list(c.stop)
        messages = [{"role": "system", "content": _text(request.system)}] if request.system else []
        messages += [{"role": m.role, "content": _text(m.parts)} for m in request.messages]
        return ModelRequest(model=self.model, messages=tuple(messages), params=params)

    @staticmethod
    def response(answer: ModelResponse, model: str) -> Any:
        from dspy.lm15 import Message, Response, Usage

        return Response(
            id=None,
            model=model,
            message=Message.assistant(answer.text),
            finish_reason="stop",
            usage=Usage(input_tokens=answer.prompt_tokens, output_tokens=answer.completion_tokens),
        )

    async def complete(self, request: Any) -> Any:
        try:
            answer = await self.call(self.request(request), self.repeat)
        except Exception as exc:
            self.error = self.error or exc
            raise
        return self.response(answer, self.model)

    def stream(self, request: Any) -> Any:
        raise NotImplementedError("the proposer does not stream")

    async def aclose(self) -> None:
        return None


class _SyncBridge:
    """DSPy's sync engine slot: runs :class:`_CallEngine` on the proposer's event loop from a worker thread
    (``asyncio.run_coroutine_threadsafe``). Called on the loop's own thread it would deadlock, so it refuses."""

    def __init__(self, engine: _CallEngine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine, self.loop = engine, loop

    def complete(self, request: Any) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError(
                "a sync DSPy call on the event loop's thread would deadlock; use acall, "
                "or run the program in a worker thread (asyncio.to_thread)"
            )
        return asyncio.run_coroutine_threadsafe(self.engine.complete(request), self.loop).result()

    def stream(self, request: Any) -> Any:
        raise NotImplementedError("the proposer does not stream")

    def close(self) -> None:
        return None


def _dspy_lm(call: Call, model: str, repeat: int, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> Any:
    """A ``dspy.LM`` whose every call goes through ``call`` to ``model`` with this repeat index (DSPy cache and
    retries off). Returns the LM and its engine (which keeps the first error ``call`` raised).

    DSPy gets a neutral model name: it applies rules of its own to names it knows (an OpenAI reasoning model
    refuses a temperature below 1), while the engine, not DSPy, decides where the request goes.
    """
    import dspy

    engine = _CallEngine(call, model, repeat)
    bridge = _SyncBridge(engine, loop)
    lm = dspy.LM(DSPY_MODEL_NAME, engine=bridge, async_engine=engine, cache=False, num_retries=0, **kwargs)
    return lm, engine


class DspyProposer(InstructionProposer):
    """DSPy's grounded instruction proposal, with every model call through our budget and cache.

    Each proposal is one call of DSPy's ``GenerateSingleModuleInstruction`` signature (ChatAdapter, no JSON
    fallback, so one call a proposal) with the task's instruction as the basic instruction, train examples
    and the baseline's mistakes (with their correct answers) as task demos, and DSPy's tips in turn. DSPy's
    dataset summary and program description are left out: each costs several more calls of the proposer model.

    A small model often misses DSPy's output format (``AdapterParseError``): such a reply is counted in
    ``parse_errors`` and its raw text cleaned with :func:`clean_instruction`; an unusable one is skipped.
    """

    def __init__(self, model: str, *, temperature: float = 0.9, max_tokens: int = 160, attempts: int = 3) -> None:
        self.model, self.temperature, self.max_tokens, self.attempts = model, temperature, max_tokens, attempts
        self.parse_errors = 0

    @staticmethod
    def _demos(examples: list[tuple[dict[str, Any], str]], failures: list[tuple[dict[str, Any], str, str]]) -> str:
        shown = [(i, y) for i, y in examples] + [(i, y) for i, _, y in failures]
        return "\n\n".join(f"Input: {_show(i)}\nAnswer: {y}" for i, y in shown) or "No task demos provided."

    async def _one(self, predictor: Any, inputs: dict[str, str], repeat: int, call: Call) -> str:
        """One proposal: the parsed instruction, or the raw reply when DSPy could not parse it."""
        import dspy
        from dspy.utils.exceptions import AdapterParseError

        lm, engine = _dspy_lm(
            call,
            self.model,
            repeat,
            asyncio.get_running_loop(),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=repeat,
        )
        adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
        try:
            with dspy.context(lm=lm, adapter=adapter, disable_history=True):
                return (await predictor.acall(**inputs)).proposed_instruction or ""
        except AdapterParseError as exc:
            self.parse_errors += 1
            log.info("DSPy could not parse proposal %d; cleaning the raw reply", repeat)
            return _MARKER.sub(" ", str(exc.lm_response or ""))
        except Exception:
            if engine.error is not None:
                raise engine.error from None
            raise

    async def propose(
        self,
        *,
        instruction: str,
        examples: list[tuple[dict[str, Any], str]],
        failures: list[tuple[dict[str, Any], str, str]],
        labels: tuple[str, ...] | None,
        n: int,
        call: Call,
    ) -> list[str]:
        from dspy.propose.grounded_proposer import TIPS, generate_instruction_class

        predictor = generate_instruction_class(
            use_dataset_summary=False,
            program_aware=False,
            use_task_demos=True,
            use_instruct_history=False,
            use_tip=True,
        )
        tips = [tip for tip in TIPS.values() if tip]
        demos = self._demos(examples, failures)
        found: list[str] = []
        seen, self.rejected = {instruction.strip().lower()}, []
        for i in range(n * self.attempts):
            if len(found) >= n:
                break
            raw = await self._one(
                predictor, {"task_demos": demos, "basic_instruction": instruction, "tip": tips[i % len(tips)]}, i, call
            )
            self.keep(raw, clean_instruction(_PREFIX.sub("", raw.strip()), labels), found, seen)
        return found
