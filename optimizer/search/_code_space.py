"""The search space of a code task: each named prompt's instruction, demos, output constraint, model and
decoding as its own dimensions (``ScopedDimension``), so that one search varies every prompt at once.

Demos and instruction edits of a prompt come from the traces of the baseline's pre-pass on train cases: the
prompt's own variables and answers inside rows whose final score was right (as DSPy bootstraps the demos of a
program's inner modules), and its answers inside rows that ended wrong for proposals.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from promptopt.config import Example, PipelineConfig, PromptConfig
from promptopt.data import Case
from promptopt.engine import EvalResult, Evaluator
from promptopt.models import ModelRequest, ModelResponse
from promptopt.search_spaces import (
    ConstrainedDimension,
    DemoSetDimension,
    Dimension,
    FewShotDimension,
    InstructionDimension,
    InstructionProposer,
    MaxTokensDimension,
    ModelDimension,
    RejectedProposal,
    ScopedDimension,
    SearchSpace,
    TemperatureDimension,
    check_instruction,
    data_edits,
    demo_sets,
    make_proposer,
)
from promptopt.spec import LoadedSpec, SearchSpec
from promptopt.tasks import Span

FAILURES_SHOWN = 4


@dataclass(frozen=True)
class TracedRow:
    """A pre-pass row of a code task: its final score (1.0: right) and its prompt calls."""

    objective: float
    expected: Any
    spans: tuple[Span, ...]


def traced_rows(result: EvalResult) -> tuple[TracedRow, ...]:
    """The scored rows of a code task's pre-pass with their traces."""
    return tuple(
        TracedRow(row.objective, row.expected, row.trace or ())
        for row in result.rows
        if row.objective is not None and row.trace
    )


def searched_prompts(loaded: LoadedSpec) -> list[str]:
    """The prompts the run varies: ``search.prompts``, else every prompt of the task."""
    prompts = loaded.spec.task.prompts or {}
    return list(loaded.spec.search.prompts or prompts)


def good_spans(rows: tuple[TracedRow, ...], prompt: str) -> list[Span]:
    """The answered calls of ``prompt`` inside rows whose final score was right."""
    return [s for r in rows if r.objective >= 1.0 for s in r.spans if s.prompt == prompt and s.output is not None]


def failed_spans(rows: tuple[TracedRow, ...], prompt: str) -> list[tuple[dict[str, Any], str, str]]:
    """(variables, the prompt's answer, what the row should have ended with) for ``prompt`` inside rows that
    ended wrong: a proposer reads them as the prompt's share of the mistakes."""
    return [
        (s.input, s.output or "", f"(the task's final answer should be {r.expected!r})")
        for r in rows
        if r.objective < 1.0
        for s in r.spans
        if s.prompt == prompt
    ]


def _demos(spans: list[Span]) -> tuple[Example, ...]:
    seen: set[str] = set()
    out = []
    for span in spans:
        key = repr(sorted(span.input.items())) + (span.output or "")
        if key not in seen and span.output:
            seen.add(key)
            out.append(Example(input=span.input, output=span.output))
    return tuple(out)


def _instructions(
    loaded: LoadedSpec,
    name: str,
    base: PromptConfig,
    rows: tuple[TracedRow, ...],
    proposals: list[tuple[str, str]],
    seed: int,
    refused: list[RejectedProposal],
    growing: bool = False,
) -> InstructionDimension:
    """The prompt's own instruction, the data's edits (label definitions from its answers in right rows) and
    the proposer's proposals, each checked; the rejected kept with their reasons."""
    labels = base.output.labels
    cases = tuple(
        Case(id=f"span{i}", input=s.input, expected=s.parsed if labels else s.output)
        for i, s in enumerate(good_spans(rows, name))
    )
    first = base.instruction
    edits, failed = data_edits(first, cases, labels, seed=seed, operators=loaded.spec.search.instructions.operators)
    candidates, sources = [first], ["spec"]
    rejected = [*refused] + [RejectedProposal(r.text, r.source, r.reason) for r in failed]
    for text, source in [(e.text, e.source) for e in edits] + proposals:
        reason = check_instruction(text, labels) or ("same as another candidate" if text in candidates else None)
        if reason:
            rejected.append(RejectedProposal(text, source, reason))
        else:
            candidates.append(text)
            sources.append(source)
    return InstructionDimension(tuple(candidates), tuple(sources), rejected=tuple(rejected), growing=growing)


def prompt_dimensions(
    loaded: LoadedSpec,
    name: str,
    base: PromptConfig,
    rows: tuple[TracedRow, ...],
    proposals: list[tuple[str, str]],
    seed: int,
    refused: list[RejectedProposal] | None = None,
    factors: bool = False,
) -> list[Dimension]:
    """The dimensions of prompt ``name``, before scoping (``refused``: its proposals the proposer left out;
    ``factors``: the ``evolve`` search's, a growing instruction and whole demo sets)."""
    spec = loaded.spec
    dims: list[Dimension] = []
    instructions = _instructions(loaded, name, base, rows, proposals, seed, refused or [], growing=factors)
    if factors or len(instructions.candidates) > 1:
        dims.append(instructions)
    demos = _demos(good_spans(rows, name))
    fs = spec.search.few_shot
    if fs.max_k > 0 and demos and factors:
        sets, sources = demo_sets({"bootstrapped": demos}, fs.max_k, fs.pool_seeds)
        if len(sets) > 1:
            dims.append(DemoSetDimension(sets, sources))
    elif fs.max_k > 0 and demos:
        dims.append(FewShotDimension(fs.max_k, {"bootstrapped": demos}, fs.pool_seeds))
    return dims + choice_dimensions(spec.search, base, constrain=base.output.type != "text")


def choice_dimensions(
    search: SearchSpec, base: PromptConfig, *, constrain: bool = True, label_prior: dict[str, float] | None = None
) -> list[Dimension]:
    """Model, temperature, max tokens and output constraint: ``base``'s value first, then the spec's other
    choices; a dimension only where there is a choice (``constrain=False``: no constraint dimension).
    ``label_prior``: the label shares a calibrated choice aims at (the train split's)."""
    dims: list[Dimension] = []
    for cls, first, extra in (
        (ModelDimension, base.model, search.models),
        (TemperatureDimension, base.params.temperature, search.temperature),
        (MaxTokensDimension, base.params.max_tokens, search.max_tokens),
    ):
        choices = tuple(dict.fromkeys((first, *extra)))
        if len(choices) > 1:
            dims.append(cls(choices))
    modes = tuple(dict.fromkeys((base.constrained, *(search.constrained if constrain else ()))))
    if len(modes) > 1:
        dims.append(ConstrainedDimension(modes, label_prior))
    return dims


def assemble_code_space(
    loaded: LoadedSpec,
    base: PipelineConfig,
    rows: tuple[TracedRow, ...],
    proposals: dict[str, list[tuple[str, str]]],
    *,
    seed: int,
    refused: dict[str, list[RejectedProposal]] | None = None,
    factors: bool = False,
) -> SearchSpace:
    """A code task's space: every searched prompt's dimensions, scoped by its name, in the task's order
    (``factors``: the ``evolve`` search's, see :func:`prompt_dimensions`)."""
    dims: list[Dimension] = []
    for name in searched_prompts(loaded):
        inner = prompt_dimensions(
            loaded, name, base.prompt(name), rows, proposals.get(name, []), seed, (refused or {}).get(name), factors
        )
        dims += [ScopedDimension(name, d) for d in inner]
    return SearchSpace(base, tuple(dims))


async def propose_for_prompts(
    loaded: LoadedSpec,
    base: PipelineConfig,
    rows: tuple[TracedRow, ...],
    evaluator: Evaluator,
    *,
    seed: int,
    proposer: InstructionProposer | None = None,
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[RejectedProposal]]]:
    """``search.instructions.propose`` proposals shared out between the searched prompts (round-robin, the
    first prompts get the remainder): each proposal for a prompt sees that prompt's variables and answers in
    rows that ended right (examples) and in rows that ended wrong (failures)."""
    wanted = loaded.spec.search.instructions
    names = searched_prompts(loaded)
    if wanted.propose == 0 or not names:
        return {}, {}
    rng = random.Random(seed)

    async def call(request: ModelRequest, repeat: int) -> ModelResponse:
        return (await evaluator.complete(request, repeat))[0]

    out: dict[str, list[tuple[str, str]]] = {}
    refused: dict[str, list[RejectedProposal]] = {}
    for i, name in enumerate(names):
        n = wanted.propose // len(names) + (1 if i < wanted.propose % len(names) else 0)
        if n == 0:
            continue
        prompt = base.prompt(name)
        writer = proposer or make_proposer(wanted.proposer, wanted.proposer_model or prompt.model)
        good = good_spans(rows, name)
        shown = rng.sample(good, min(4, len(good)))
        texts = await writer.propose(
            instruction=prompt.instruction or "Complete the task.",
            examples=[(s.input, s.output or "") for s in shown],
            failures=failed_spans(rows, name)[:FAILURES_SHOWN],
            labels=prompt.output.labels,
            n=n,
            call=call,
        )
        out[name] = [(t, wanted.proposer) for t in texts]
        refused[name] = [RejectedProposal(text, wanted.proposer, reason) for text, reason in writer.rejected]
    return out, refused
