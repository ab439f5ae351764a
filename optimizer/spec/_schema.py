"""The spec: frozen pydantic models for a YAML file a user writes by hand.

Example::

    task:
      name: sentiment
      model: local/smollm2-135m
      prompt:
        - {role: system, content: "Classify the review as positive or negative."}
        - {role: user, content: "{{text}}"}
      output: {type: label, labels: [positive, negative]}
    dataset: {file: reviews.jsonl, split: {train: 0.5, validation: 0.25, test: 0.25}, seed: 0}
    scorers: [{type: exact_match}]
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promptopt.names import DEFAULT_LABEL, Label, PromptName
from promptopt.spec._scorers import ScorerSpec, StepsSpec, ToolCallSpec


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(_Frozen):
    role: Literal["system", "user", "assistant"]
    content: str = Field(description="Text with {{variable}} placeholders filled from each case's input.")


class Decoding(_Frozen):
    """Decoding parameters passed to the model. ``extra`` passes provider-specific ones through."""

    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(16, ge=1, le=32768)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class OutputSpec(_Frozen):
    """How the model's text becomes the value that scorers compare with ``expected``."""

    type: Literal["text", "label", "json"] = "text"
    labels: tuple[str, ...] | None = Field(None, description="Allowed labels, with type: label.")
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="JSON Schema, with type: json.")

    @model_validator(mode="after")
    def _consistent(self) -> OutputSpec:
        if self.type == "label" and not self.labels:
            raise ValueError("type: label needs 'labels', a list of at least two strings")
        if self.labels is not None and len(set(self.labels)) < 2:
            raise ValueError("'labels' needs at least two distinct strings")
        if self.type != "label" and self.labels:
            raise ValueError("'labels' is only used with type: label")
        return self


def _needs_user_turn(value: tuple[Message, ...] | None) -> tuple[Message, ...] | None:
    if value is not None and not any(m.role == "user" for m in value):
        raise ValueError("the prompt needs at least one message with role: user")
    return value


class PromptSpec(_Frozen):
    """One named prompt of a code task (``task.prompts``): the fields of a one-prompt task but its name.
    ``model`` left out takes the task's ``model``."""

    model: str | None = Field(None, description="litellm model string; default the task's model.")
    prompt: tuple[Message, ...] = Field(min_length=1, description="Chat messages with {{variable}} placeholders.")
    params: Decoding = Decoding()
    output: OutputSpec = OutputSpec()
    constrained: bool = Field(False, description="Constrain the local model's output to the labels/schema.")
    tools: tuple[dict[str, Any], ...] | None = Field(None, description="Function schemas the prompt may call.")
    response_format: dict[str, Any] | None = Field(None, description="Response format, passed through.")

    _user_turn = field_validator("prompt")(_needs_user_turn)


PROMPT_KEY = r"^[a-z_][a-z0-9_]{0,39}$"


class TaskSpec(_Frozen):
    """What is evaluated: one prompt (``prompt``), or a code task (``function`` and ``prompts``): an async or
    plain Python function ``f(input, prompts)`` that calls the named prompts and returns the output. For a code
    task ``output`` says how the function's return value is parsed, ``model`` is the default model of its
    prompts, and ``prompt`` is not used."""

    name: PromptName = Field(description="Prompt name in the registry.")
    model: str = Field("local/smollm2-135m", description="litellm model string, or local/smollm2-135m.")
    prompt: tuple[Message, ...] | None = Field(
        None, min_length=1, description="Chat messages with {{variable}} placeholders (a one-prompt task)."
    )
    params: Decoding = Decoding()
    output: OutputSpec = OutputSpec()
    constrained: bool = Field(False, description="Constrain the local model's output to the labels/schema.")
    tools: tuple[dict[str, Any], ...] | None = Field(None, description="Function schemas, passed through.")
    response_format: dict[str, Any] | None = Field(None, description="Response format, passed through.")
    function: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="A code task: 'package.module:function', importable from the spec's folder.",
    )
    prompts: dict[str, PromptSpec] | None = Field(
        None, description="A code task's prompts by name (lowercase letters, digits, _), as the function calls them."
    )

    _user_turn = field_validator("prompt")(_needs_user_turn)

    @field_validator("prompts")
    @classmethod
    def _prompt_keys(cls, value: dict[str, PromptSpec] | None) -> dict[str, PromptSpec] | None:
        if value is not None:
            if not value:
                raise ValueError("a code task needs at least one prompt")
            bad = sorted(k for k in value if not re.match(PROMPT_KEY, k))
            if bad:
                raise ValueError(f"prompt names are lowercase letters, digits and _ (at most 40): {bad}")
        return value

    @model_validator(mode="after")
    def _one_prompt_or_code(self) -> TaskSpec:
        if self.function is None and self.prompts is not None:
            raise ValueError("@prompts: belong to a code task: add 'function: package.module:function'")
        if self.function is not None and self.prompts is None:
            raise ValueError("@prompts: Field required: a code task ('function') needs the named prompts it calls")
        if self.function is not None and self.prompt is not None:
            raise ValueError(
                "@prompt: a code task has 'prompts', not 'prompt': move the messages under a prompt's name"
            )
        if self.function is None and self.prompt is None:
            raise ValueError("@prompt: Field required: chat messages, or 'function' and 'prompts' for a code task")
        if self.function is not None:
            per_prompt = sorted({"params", "constrained", "tools", "response_format"} & self.model_fields_set)
            if per_prompt:
                raise ValueError(
                    f"@{per_prompt[0]}: a code task sets it per prompt: move it under task.prompts.<name>."
                    f"{per_prompt[0]} (only 'model' is a default for its prompts)"
                )
        return self

    @property
    def is_code(self) -> bool:
        """A code task (``function`` + ``prompts``), not one prompt."""
        return self.function is not None

    @property
    def messages(self) -> tuple[Message, ...]:
        """The one-prompt task's messages.

        Raises:
            ValueError: a code task, which has named prompts instead.
        """
        if self.prompt is None:
            raise ValueError(f"task {self.name!r} is a code task: its messages are per prompt (task.prompts)")
        return self.prompt


class SplitRatio(_Frozen):
    train: float = Field(0.5, ge=0, le=1)
    validation: float = Field(0.25, ge=0, le=1)
    test: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitRatio:
        if abs(self.train + self.validation + self.test - 1.0) > 1e-6:
            raise ValueError("train + validation + test must add up to 1")
        return self


class DatasetSpec(_Frozen):
    """Either explicit ``train``/``validation``/``test`` files, or one ``file`` split by ``split`` with ``seed``.

    Files are JSONL or CSV with ``input`` (an object, or CSV columns ``input.<field>``), ``expected`` and
    optional ``metadata``. Paths are relative to the spec file.
    """

    file: str | None = None
    split: SplitRatio | None = None
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    validation_from_train: int | None = Field(
        None,
        ge=1,
        description="No validation file: carve this many cases out of the train file (seeded); "
        "they leave the train split, so few-shot examples never come from validation.",
    )
    seed: int = 0
    limit: dict[Literal["train", "validation", "test"], int] = Field(
        default_factory=dict, description="Keep at most this many cases per split (a seeded sample)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        explicit = any((self.train, self.validation, self.test))
        if self.file and explicit:
            raise ValueError("give either 'file' (split by ratio) or 'train'/'validation'/'test' files, not both")
        if self.validation_from_train and (self.file or self.validation or not self.train):
            raise ValueError("'validation_from_train' needs a 'train' file and no 'validation' file or 'file'")
        if not self.file and not self.validation and not self.validation_from_train:
            raise ValueError("give 'file', a 'validation' file, or 'train' with 'validation_from_train'")
        return self


class EvalSettings(_Frozen):
    concurrency: int = Field(4, ge=1, le=1024, description="Calls in flight per model.")
    timeout_s: float = Field(60.0, gt=0, description="Per-call timeout in seconds.")
    retries: int = Field(3, ge=0, le=20, description="Retries of a retryable error (429, 5xx, timeout).")
    max_error_rate: float = Field(0.2, ge=0, le=1, description="An eval with more failed rows fails.")
    repeats: int = Field(1, ge=1, le=100, description="Samples per case (each cached apart).")
    isolate: bool = Field(
        False, description="Run a code task's function in worker processes (killed after task_timeout_s)."
    )
    task_timeout_s: float = Field(
        60.0, gt=0, description="With isolate: the function's own time per case (model calls not counted)."
    )


class InstructionSearch(_Frozen):
    variants: tuple[str, ...] = Field((), description="Alternative instructions written by hand.")
    propose: int = Field(0, ge=0, le=50, description="How many instructions a proposer model writes.")
    proposer: Literal["grounded", "dspy"] = Field(
        "grounded",
        description="Who writes proposals: grounded (ours: train examples and the baseline's "
        "mistakes) or dspy (DSPy's instruction proposal signature); both call through the budget and cache.",
    )
    proposer_model: str | None = Field(None, description="litellm model; defaults to the task model.")
    operators: tuple[Literal["format", "definitions", "role", "summary"], ...] = Field(
        (),
        description="Instruction edits built from the data, no model needed: the answer form, label definitions "
        "with train examples, a role line, a task summary (each a candidate beside the spec's instruction).",
    )
    reflection_rows: int = Field(
        8,
        ge=1,
        le=200,
        description="Train cases the evolve search runs a parent on in each generation; its mistakes there "
        "write the children (never validation, confirmation or test cases).",
    )

    @field_validator("proposer", mode="before")
    @classmethod
    def _known_proposer(cls, value: Any) -> Any:
        if value not in ("grounded", "dspy"):
            raise ValueError(
                "unknown proposer; expected grounded (ours: train examples and the baseline's "
                "mistakes) or dspy (DSPy's instruction proposal)"
            )
        return value


class FewShotSearch(_Frozen):
    max_k: int = Field(0, ge=0, le=32, description="Search 0..max_k examples from the train split.")
    strategies: tuple[Literal["random", "balanced", "bootstrapped"], ...] = ("random", "balanced")
    pool_seeds: int = Field(4, ge=1, le=64, description="How many seeded subsets each strategy offers.")


class ConfirmSearch(_Frozen):
    """A confirmation slice: train cases set aside before the search; the shortlist is scored on them again
    and the winner is the best on validation and confirmation rows together (fewer winners that only fit
    the validation rows)."""

    cases: int = Field(0, ge=0, le=10000, description="Train cases to set aside (0: no confirmation).")
    shortlist: int = Field(3, ge=2, le=20, description="Best configurations by validation scored again.")


class FineTuneJob(_Frozen):
    """One fine-tune the search may use as the task's model: trained once before the trials that need it and
    found again by a hash of (base model, training data, parameters) by every later trial and run.

    A ``local/<name>`` base trains a LoRA on CPU. An ``openai/<model>`` base is a provider fine-tune through
    litellm's fine-tuning API, on the endpoint the task's model is called at (``task.params.extra.api_base``,
    else OpenAI's): trials call the fine-tuned model with the task's parameters. For it, ``epochs`` is the
    job's ``n_epochs``, ``learning_rate`` (only when written) its ``learning_rate_multiplier`` (else the
    provider chooses), ``rank`` and ``alpha`` must not be written (LoRA only), and
    ``price_per_1m_training_tokens`` is required (litellm's price map has no training prices).
    """

    name: str | None = Field(None, max_length=40, description="Shown in reports; default ft1, ft2, ...")
    base: str | None = Field(
        None,
        description="Model to fine-tune; default the task's model. local/<name> trains a LoRA of the embedded "
        "model on CPU (pip install -e '.[finetune]'); openai/<model> is a provider fine-tune (OpenAI-compatible).",
    )
    data: Literal["train", "traces"] = Field(
        "train",
        description="train: the train split rendered through the spec's prompt, answer = expected; traces: only "
        "the train cases the spec's prompt already answers right in the pre-pass (bootstrapped successes).",
    )
    epochs: int = Field(3, ge=1, le=100)
    learning_rate: float = Field(
        2e-3, gt=0, le=1, description="A LoRA's learning rate; a provider job's learning_rate_multiplier."
    )
    rank: int = Field(8, ge=1, le=256, description="LoRA rank (LoRA only).")
    alpha: int = Field(
        16, ge=1, le=4096, description="LoRA scale numerator: updates are scaled by alpha / rank (LoRA only)."
    )
    max_rows: int = Field(200, ge=1, le=100000, description="Training examples at most (a fixed sample).")
    price_per_1m_training_tokens: float | None = Field(
        None, ge=0, description="A provider fine-tune's price in dollars per 1M training tokens (required for one)."
    )

    def base_model(self, task_model: str) -> str:
        """The model this job fine-tunes: ``base``, else the task's model."""
        return self.base or task_model


def _job_names(jobs: tuple[FineTuneJob, ...]) -> list[str]:
    return [job.name or f"ft{i + 1}" for i, job in enumerate(jobs)]


class FineTuneSearch(_Frozen):
    """Fine-tuned models as candidates: off (no jobs) by default; each job is one more choice of model."""

    jobs: tuple[FineTuneJob, ...] = Field((), max_length=8, description="Fine-tunes to train; empty: none.")

    def named(self) -> list[tuple[str, FineTuneJob]]:
        """(name, job) for every job: its ``name``, else ft1, ft2, ... by position."""
        return list(zip(_job_names(self.jobs), self.jobs, strict=True))

    @field_validator("jobs")
    @classmethod
    def _unique_job_names(cls, value: tuple[FineTuneJob, ...]) -> tuple[FineTuneJob, ...]:
        names = _job_names(value)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"fine-tune job names must be unique (unnamed jobs are ft1, ft2, ...): {dupes}")
        if "none" in names:
            raise ValueError("'none' names the configuration's own model; give the job another name")
        return value


class SearchSpec(_Frozen):
    instructions: InstructionSearch = InstructionSearch()
    confirm: ConfirmSearch = ConfirmSearch()
    few_shot: FewShotSearch = FewShotSearch()
    models: tuple[str, ...] = Field((), description="Candidate models; empty keeps the task's model.")
    temperature: tuple[float, ...] = ()
    max_tokens: tuple[int, ...] = ()
    constrained: tuple[bool | Literal["calibrated"], ...] = Field(
        (),
        description="Ways to produce the answer: false (free text), true (constrained to the labels/schema), "
        "calibrated (label tasks on local models: every label scored, corrected by a fitted label bias).",
    )
    fine_tune: FineTuneSearch = FineTuneSearch()
    prompts: tuple[str, ...] = Field(
        (), description="A code task's prompts to search (names in task.prompts); empty: every prompt."
    )


PRESET_TRIALS = {"light": 12, "medium": 30, "heavy": 80}  # full evals a preset buys (like MIPROv2's/GEPA's auto)


class BudgetSpec(_Frozen):
    """Limits of a run. ``preset`` (light, medium, heavy) buys a number of full evals and, unless
    ``model_calls`` is given, the calls those evals need at most on this data (``optimize run --dry-run`` shows
    them); ``trials`` written in the spec wins over the preset's."""

    preset: Literal["light", "medium", "heavy"] | None = Field(
        None, description="light (12 trials), medium (30) or heavy (80), with the calls they need at most."
    )
    trials: int = Field(20, ge=1, le=100000)
    model_calls: int | None = Field(None, ge=1)
    usd: float | None = Field(None, ge=0)
    wall_s: float | None = Field(None, gt=0)

    @property
    def effective_trials(self) -> int:
        """``trials`` as written, else the preset's, else the default."""
        if self.preset is None or "trials" in self.model_fields_set:
            return self.trials
        return PRESET_TRIALS[self.preset]


class RegistrySettings(_Frozen):
    """Gated promotion of a run's winner into the prompt registry (under ``task.name``)."""

    promote: bool = Field(True, description="Register the winner and move the label if it earned it.")
    label: Label = DEFAULT_LABEL
    margin: float = Field(0.0, ge=0, le=1, description="Required mean lift over the incumbent on the test split.")
    alpha: float = Field(0.05, gt=0, le=1, description="Significance level of the paired test.")


class Spec(_Frozen):
    task: TaskSpec
    dataset: DatasetSpec
    scorers: tuple[ScorerSpec, ...] = Field(min_length=1)
    eval: EvalSettings = EvalSettings()
    search: SearchSpec = SearchSpec()
    budget: BudgetSpec = BudgetSpec()
    registry: RegistrySettings = RegistrySettings()

    @field_validator("scorers")
    @classmethod
    def _unique_names(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        keys = [s.key for s in value]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"scorer names must be unique; give 'name' to tell apart: {dupes}")
        if sum(s.weight for s in value) <= 0:
            raise ValueError("at least one scorer needs a weight above 0")
        return value

    def _check_calibrated(self) -> None:
        where = "@search.constrained: calibrated"
        if self.task.prompts is not None:
            raise ValueError(f"{where} is for one-prompt tasks; a code task's prompts cannot be calibrated yet")
        if self.task.output.type != "label":
            raise ValueError(f"{where} scores labels; task.output.type is {self.task.output.type!r}, not 'label'")
        remote = sorted({m for m in (self.task.model, *self.search.models) if not m.startswith("local/")})
        if remote:
            raise ValueError(
                f"{where} needs label log-probabilities, which only the local models give (local/...); "
                f"not {remote}: drop calibrated or those models"
            )

    @model_validator(mode="after")
    def _searched_prompts_exist(self) -> Spec:
        if self.search.prompts and self.task.prompts is None:
            raise ValueError("@search.prompts: names prompts of a code task; this task has one prompt")
        known = sorted(self.task.prompts or {})
        unknown = sorted(set(self.search.prompts) - set(known))
        if unknown:
            raise ValueError(f"@search.prompts: {unknown} not in task.prompts {known}")
        if "calibrated" in self.search.constrained:
            self._check_calibrated()
        for i, scorer in enumerate(self.scorers):
            if isinstance(scorer, ToolCallSpec | StepsSpec) and self.task.prompts is None:
                raise ValueError(
                    f"@scorers[{i}].type: {scorer.type} scores a code task's trace, and a one-prompt task records "
                    "none; write the task as code (task.function + task.prompts) to score its tool calls or steps"
                )
            # Only the trace scorers name a task's prompt (an llm_judge's ``prompt`` is its own template).
            name = scorer.prompt if isinstance(scorer, ToolCallSpec | StepsSpec) else None
            if name is not None and name not in known:
                where = "task.prompts " + str(known) if known else "a code task's prompts (this task has one prompt)"
                raise ValueError(f"@scorers[{i}].prompt: {name!r} is not one of {where}")
        return self
