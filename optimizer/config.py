"""The candidate, the value that search varies, the eval engine runs and the registry stores: a
:class:`PromptConfig` for one prompt, a :class:`PipelineConfig` for a code task (its function and one
PromptConfig per named prompt). Immutable, content-hashed, JSON round-trip."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from promptopt.data import content_hash
from promptopt.spec import Decoding, Message, OutputSpec, PromptSpec, TaskSpec, render_template

if TYPE_CHECKING:
    from promptopt.spec import LoadedSpec


class Example(BaseModel):
    """A few-shot demonstration: template input fields and the answer the model should give."""

    model_config = ConfigDict(frozen=True)
    input: dict[str, Any]
    output: str


def example_output(expected: Any) -> str:
    """The assistant text that demonstrates ``expected`` (JSON for structured values)."""
    return expected if isinstance(expected, str) else json.dumps(expected, ensure_ascii=False)


class LabelCalibration(BaseModel):
    """Label scoring with a fitted bias, for label outputs on models that report label log-probabilities.

    Each label is scored by its log-probability as the whole answer; the answer is the label with the highest
    ``log p(label | prompt) - bias[label]``. A small model's label choice is biased by its prompt (the last
    example's label, a word in the instruction): with several examples and a constrained output SmolLM2-135M
    often answers one label for every input. The bias removes that prior, as batch calibration does (Zhou et
    al., 2024): ``bias[l] = log(mean over inputs of p(l | input)) - log(prior[l])``, fitted on the inputs of
    the first split the configuration is evaluated on (their labels are never read), ``prior`` the train
    split's label shares. Fitted once (the search's validation eval) and kept: later evals (test, production)
    use the same numbers.

    ``bias`` empty: not fitted yet; the first eval fits it.
    """

    model_config = ConfigDict(frozen=True)
    bias: dict[str, float] = Field(default_factory=dict)
    prior: dict[str, float] = Field(default_factory=dict, description="Label shares the fit aims at (train's).")
    fitted_on: str | None = Field(None, description="What the bias was fitted on, e.g. 'validation: 30 inputs'.")

    @property
    def fitted(self) -> bool:
        return bool(self.bias)

    def decide(self, scores: dict[str, float]) -> str:
        """The label with the highest calibrated score (the first of the tied ones, in ``scores`` order)."""
        return max(scores, key=lambda label: scores[label] - self.bias.get(label, 0.0))


class PromptConfig(BaseModel):
    """Everything needed to call a model for one case: template, model, decoding, examples, parsing.

    ``calibration`` (label outputs): score the labels instead of decoding an answer, corrected by a fitted label
    bias (:class:`LabelCalibration`); ``constrained`` is then true.
    """

    model_config = ConfigDict(frozen=True)
    messages: tuple[Message, ...]
    model: str
    params: Decoding = Decoding()
    output: OutputSpec = OutputSpec()
    constrained: bool = False
    examples: tuple[Example, ...] = ()
    tools: tuple[dict[str, Any], ...] | None = None
    response_format: dict[str, Any] | None = None
    calibration: LabelCalibration | None = None
    origin: dict[str, Any] = Field(
        default_factory=dict, exclude=True, description="How search built it (not part of the content hash)."
    )

    @model_serializer(mode="wrap")
    def _omit_no_calibration(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when absent, so that every configuration written before calibration keeps its hash.
        data: dict[str, Any] = handler(self)
        if data.get("calibration", 0) is None:
            data.pop("calibration")
        return data

    @classmethod
    def from_task(cls, task: TaskSpec) -> PromptConfig:
        """The one-prompt task's configuration as written.

        Raises:
            ValueError: a code task (see :func:`base_candidate`).
        """
        return cls(
            messages=task.messages,
            model=task.model,
            params=task.params,
            output=task.output,
            constrained=task.constrained,
            tools=task.tools,
            response_format=task.response_format,
        )

    @classmethod
    def from_prompt(cls, prompt: PromptSpec, *, model: str) -> PromptConfig:
        """One named prompt of a code task as written (``model``: the task's, when the prompt names none)."""
        return cls(
            messages=prompt.prompt,
            model=prompt.model or model,
            params=prompt.params,
            output=prompt.output,
            constrained=prompt.constrained,
            tools=prompt.tools,
            response_format=prompt.response_format,
        )

    @property
    def hash(self) -> str:
        return content_hash(self.model_dump(mode="json", by_alias=True))

    @property
    def instruction(self) -> str:
        """Text of the first system message ("" when there is none)."""
        return next((m.content for m in self.messages if m.role == "system"), "")

    def with_instruction(self, text: str) -> PromptConfig:
        """This configuration with ``text`` as its first system message (one is added in front if there is
        none; no instruction on a prompt without a system message leaves it as it is)."""
        msgs = list(self.messages)
        idx = next((i for i, m in enumerate(msgs) if m.role == "system"), None)
        if idx is None and not text:
            return self
        if idx is None:
            msgs.insert(0, Message(role="system", content=text))
        else:
            msgs[idx] = Message(role="system", content=text)
        return self.model_copy(update={"messages": tuple(msgs)})

    def call_params(self) -> dict[str, Any]:
        """Model, decoding parameters, tools and response format (as an eval sends them): the keyword
        arguments of a chat-completion call besides the messages."""
        params: dict[str, Any] = {"model": self.model}
        params.update(self.params.model_dump(exclude_none=True, exclude={"extra"}))
        params.update(self.params.extra)
        if "stop" in params:
            params["stop"] = list(params["stop"])
        if self.tools is not None:
            params["tools"] = [dict(tool) for tool in self.tools]
        if self.response_format is not None:
            params["response_format"] = self.response_format
        elif self.constrained and self.output.type == "json":
            # As the eval engine asks cloud models for a constrained JSON output.
            schema = self.output.json_schema or {"type": "object"}
            params["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        return params

    def render(self, variables: dict[str, Any]) -> list[dict[str, str]]:
        """Chat messages for one case: leading system messages, then the examples as user/assistant turns,
        then the remaining turns filled with ``variables``. The shared prefix is identical for every case."""
        lead = 0
        while lead < len(self.messages) and self.messages[lead].role == "system":
            lead += 1
        out = [{"role": m.role, "content": render_template(m.content, variables)} for m in self.messages[:lead]]
        turns = self.messages[lead:]
        for ex in self.examples:
            out += [
                {"role": m.role, "content": render_template(m.content, ex.input)} for m in turns if m.role == "user"
            ]
            out.append({"role": "assistant", "content": ex.output})
        out += [{"role": m.role, "content": render_template(m.content, variables)} for m in turns]
        return out

    def describe(self, width: int = 60) -> str:
        """One short line for leaderboards: model, examples, temperature, instruction start."""
        instr = " ".join(self.instruction.split())
        if len(instr) > width:
            instr = instr[: width - 1] + "…"
        flags = f"{self.model} k={len(self.examples)} T={self.params.temperature:g}"
        if self.calibration is not None:
            flags += " calibrated"
        elif self.constrained:
            flags += " constrained"
        return f"{flags} | {instr!r}"


class PipelineConfig(BaseModel):
    """A code task's candidate: the function (its import path and the hash of its module's code, so a changed
    function is a new candidate), the configuration of each named prompt it calls, and how its return value is
    parsed (``output``)."""

    model_config = ConfigDict(frozen=True)
    function: str
    code_hash: str
    prompts: dict[str, PromptConfig]
    output: OutputSpec = OutputSpec()
    origin: dict[str, Any] = Field(
        default_factory=dict, exclude=True, description="How search built it (not part of the content hash)."
    )

    @property
    def hash(self) -> str:
        return content_hash(self.model_dump(mode="json", by_alias=True))

    @property
    def model(self) -> str:
        """The models its prompts call, in prompt order, joined by ``+`` (one name when they share one)."""
        return "+".join(dict.fromkeys(p.model for p in self.prompts.values()))

    @property
    def instruction(self) -> str:
        """Each prompt's instruction, as ``name: text`` lines."""
        return "\n".join(f"{name}: {p.instruction}" for name, p in self.prompts.items())

    def prompt(self, name: str) -> PromptConfig:
        """The configuration of prompt ``name``.

        Raises:
            KeyError: no such prompt (the message lists them).
        """
        try:
            return self.prompts[name]
        except KeyError:
            raise KeyError(f"no prompt {name!r} in this task; it has {sorted(self.prompts)}") from None

    def with_prompt(self, name: str, config: PromptConfig) -> PipelineConfig:
        """This candidate with prompt ``name`` replaced (its place in the order kept)."""
        self.prompt(name)
        return self.model_copy(update={"prompts": {**self.prompts, name: config}})

    def describe(self, width: int = 60) -> str:
        """One short line for leaderboards: the function, then each prompt's model, examples and instruction."""
        each = max(12, width // max(1, len(self.prompts)))
        parts = [f"{name}[{p.describe(each)}]" for name, p in self.prompts.items()]
        return f"{self.function} " + " ".join(parts)


TaskConfig: TypeAlias = PromptConfig | PipelineConfig


def candidate_from_json(data: dict[str, Any]) -> TaskConfig:
    """A stored candidate back as its value: a :class:`PipelineConfig` when it names a function."""
    if "function" in data:
        return PipelineConfig.model_validate(data)
    return PromptConfig.model_validate(data)


def base_candidate(loaded: LoadedSpec) -> TaskConfig:
    """The spec's task as written: its one prompt, or its function with its prompts.

    Raises:
        InputError: a code task whose function cannot be imported (file and field named).
    """
    from promptopt.tasks import code_hash, importable_from, load_function

    task = loaded.spec.task
    if task.function is None or task.prompts is None:
        return PromptConfig.from_task(task)
    importable_from(loaded.base_dir)
    fn = load_function(task.function, file=str(loaded.path), base_dir=loaded.base_dir)
    return PipelineConfig(
        function=task.function,
        code_hash=code_hash(fn),
        prompts={name: PromptConfig.from_prompt(p, model=task.model) for name, p in task.prompts.items()},
        output=task.output,
    )


def on_code_of(config: TaskConfig, current: TaskConfig) -> TaskConfig:
    """``config`` with ``current``'s code: a registered bundle of the same function compared with the spec's
    function as it is now (the code an application would run it with). Anything else is returned as is."""
    if isinstance(config, PipelineConfig) and isinstance(current, PipelineConfig):
        if config.function == current.function:
            return config.model_copy(update={"code_hash": current.code_hash})
    return config
