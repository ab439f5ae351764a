"""Building the search space from a spec: instruction candidates (spec, variants, proposals), few-shot pools
(random, balanced, bootstrapped from the train split only), models and decoding choices."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from promptopt.config import Example, PromptConfig, base_candidate, example_output
from promptopt.data import Dataset, Split
from promptopt.engine import Evaluator, Origin
from promptopt.models import ModelRequest, ModelResponse
from promptopt.search._code_space import TracedRow, choice_dimensions, traced_rows
from promptopt.search_spaces import (
    DemoSetDimension,
    Dimension,
    FewShotDimension,
    FineTuneDimension,
    InstructionDimension,
    InstructionProposer,
    RejectedProposal,
    SearchSpace,
    check_instruction,
    data_edits,
    demo_sets,
    make_proposer,
)
from promptopt.spec import LoadedSpec

POOL_CAP = 64
BOOTSTRAP_SAMPLE = 24


@dataclass(frozen=True)
class PrePass:
    """What the baseline did on a train sample: correct cases (bootstrapped demos) and mistakes (grounding);
    for a code task, every scored row with its trace."""

    correct: tuple[Example, ...]
    failures: tuple[tuple[dict[str, Any], str, str], ...]
    traces: tuple[TracedRow, ...] = ()


def _sample(split: Split, n: int, seed: int) -> Split:
    cases = list(split.cases)
    if len(cases) > n:
        cases = random.Random(seed).sample(cases, n)
    return Split(name=split.name, cases=tuple(cases))


def needs_prepass(loaded: LoadedSpec) -> bool:
    s = loaded.spec.search
    return (
        (s.few_shot.max_k > 0 and ("bootstrapped" in s.few_shot.strategies or loaded.spec.task.is_code))
        or s.instructions.propose > 0
        or any(job.data == "traces" for job in s.fine_tune.jobs)
    )


async def prepass(
    loaded: LoadedSpec, dataset: Dataset, evaluator: Evaluator, scorers: list[Any], *, origin: Origin, seed: int
) -> PrePass:
    """Evaluate the spec's configuration on a train sample (recorded with ``origin``, the run's pre-pass)."""
    sample = _sample(dataset.train, BOOTSTRAP_SAMPLE, seed)
    if not sample.cases:
        return PrePass((), ())
    result = await evaluator.run(
        base_candidate(loaded),
        sample,
        scorers,
        name=loaded.spec.task.name,
        dataset_hash=dataset.hash,
        origin=origin,
    )
    correct, failures = [], []
    for row in result.rows:
        if row.objective is None:
            continue
        if row.objective >= 1.0 and row.expected is not None:
            correct.append(Example(input=row.input, output=example_output(row.expected)))
        elif row.objective < 1.0:
            failures.append((row.input, row.output or "", example_output(row.expected)))
    return PrePass(tuple(correct), tuple(failures), traced_rows(result))


def label_shares(split: Split, labels: tuple[str, ...] | None) -> dict[str, float]:
    """Each label's share of ``split``'s expected values (empty when the output has no labels or none is
    expected)."""
    if not labels:
        return {}
    counts = dict.fromkeys(labels, 0)
    for case in split.cases:
        if isinstance(case.expected, str) and case.expected in counts:
            counts[case.expected] += 1
    total = sum(counts.values())
    return {label: n / total for label, n in counts.items()} if total else {}


def _pool(split: Split, seed: int) -> tuple[Example, ...]:
    cases = [c for c in split.cases if c.expected is not None]
    if len(cases) > POOL_CAP:
        cases = random.Random(seed).sample(cases, POOL_CAP)
    return tuple(Example(input=c.input, output=example_output(c.expected)) for c in cases)


async def propose_instructions(
    loaded: LoadedSpec,
    dataset: Dataset,
    evaluator: Evaluator,
    pre: PrePass,
    *,
    seed: int,
    proposer: InstructionProposer | None = None,
) -> tuple[list[str], list[RejectedProposal]]:
    """The proposer's instructions, and the answers it left out with their reasons (source: the proposer)."""
    spec = loaded.spec
    n = spec.search.instructions.propose
    if n == 0:
        return [], []
    wanted = spec.search.instructions
    proposer = proposer or make_proposer(wanted.proposer, wanted.proposer_model or spec.task.model)
    rng = random.Random(seed)
    train = [c for c in dataset.train.cases if c.expected is not None]
    shown = rng.sample(train, min(4, len(train)))

    async def call(request: ModelRequest, repeat: int) -> ModelResponse:
        return (await evaluator.complete(request, repeat))[0]

    proposals = await proposer.propose(
        instruction=PromptConfig.from_task(spec.task).instruction or "Complete the task.",
        examples=[(c.input, example_output(c.expected)) for c in shown],
        failures=list(pre.failures[:4]),
        labels=spec.task.output.labels,
        n=n,
        call=call,
    )
    return proposals, [RejectedProposal(text, wanted.proposer, reason) for text, reason in proposer.rejected]


def assemble_space(
    loaded: LoadedSpec,
    dataset: Dataset,
    pre: PrePass,
    proposals: list[str],
    *,
    seed: int,
    factors: bool = False,
    refused: tuple[RejectedProposal, ...] = (),
    fine_tune: FineTuneDimension | None = None,
) -> SearchSpace:
    """The dimensions of a run's space. ``factors`` (the ``evolve`` search): the instruction is a growing
    dimension (present even with the spec's instruction alone) and demos are whole sets built now
    (:func:`~promptopt.search_spaces.demo_sets`) instead of k, strategy, seed and order drawn jointly.
    ``refused``: proposals left out before (the proposer's), kept with the instruction dimension.
    ``fine_tune``: the trained jobs of ``search.fine_tune``, last, so that a fine-tune replaces the model the
    other dimensions chose."""
    spec, task = loaded.spec, loaded.spec.task
    base = PromptConfig.from_task(task)
    dims: list[Dimension] = []
    instructions = _instructions(loaded, dataset, proposals, seed=seed, growing=factors, refused=refused)
    if factors or len(instructions.candidates) > 1:
        dims.append(instructions)
    fs = spec.search.few_shot
    if fs.max_k > 0:
        pools: dict[str, tuple[Example, ...]] = {
            s: _pool(dataset.train, seed) for s in fs.strategies if s != "bootstrapped"
        }
        if "bootstrapped" in fs.strategies and pre.correct:
            pools["bootstrapped"] = pre.correct
        if factors:
            sets, sources = demo_sets(pools, fs.max_k, fs.pool_seeds)
            if len(sets) > 1:
                dims.append(DemoSetDimension(sets, sources))
        elif any(pools.values()):
            dims.append(FewShotDimension(fs.max_k, pools, fs.pool_seeds))
    dims += choice_dimensions(spec.search, base, label_prior=label_shares(dataset.train, task.output.labels))
    if fine_tune is not None:
        dims.append(fine_tune)
    return SearchSpace(base, tuple(dims))


def _instructions(
    loaded: LoadedSpec,
    dataset: Dataset,
    proposals: list[str],
    *,
    seed: int,
    growing: bool,
    refused: tuple[RejectedProposal, ...],
) -> InstructionDimension:
    """The spec's instruction, its hand-written variants, the data's edits and the proposer's proposals, each
    checked (:func:`~promptopt.search_spaces.check_instruction`); the rejected kept with their reasons."""
    spec, task = loaded.spec, loaded.spec.task
    wanted = spec.search.instructions
    first = PromptConfig.from_task(task).instruction
    candidates = [first] + [v for v in wanted.variants if v != first]
    sources = ["spec"] + ["variant"] * (len(candidates) - 1)
    edits, failed = data_edits(first, dataset.train.cases, task.output.labels, seed=seed, operators=wanted.operators)
    rejected = [*refused] + [RejectedProposal(r.text, r.source, r.reason) for r in failed]
    offered = [(e.text, e.source) for e in edits] + [(p, wanted.proposer) for p in proposals]
    for text, source in offered:
        duplicate = "same as another candidate" if text in candidates else None
        reason = check_instruction(text, task.output.labels) or duplicate
        if reason:
            rejected.append(RejectedProposal(text, source, reason))
        else:
            candidates.append(text)
            sources.append(source)
    return InstructionDimension(tuple(candidates), tuple(sources), rejected=tuple(rejected), growing=growing)
