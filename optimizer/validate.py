"""Checks of a spec against its data, made before any model call: every problem names the file and field."""

from __future__ import annotations

from promptopt.data import Dataset, load_dataset
from promptopt.errors import InputError
from promptopt.spec import FineTuneJob, LoadedSpec, TemplateSyntaxProblem, template_variables


def _split_file(loaded: LoadedSpec, split: str) -> str:
    ds = loaded.spec.dataset
    rel = ds.file or getattr(ds, split) or ""
    return str(loaded.base_dir / rel) if rel else str(loaded.path)


def check_templates(loaded: LoadedSpec) -> frozenset[str]:
    """Parse every message template; return the variables a one-prompt task reads from each case (a code
    task's function fills its prompts' variables itself: none are read from the case directly)."""
    task = loaded.spec.task
    names: set[str] = set()
    where = [("task.prompt", task.prompt or ())] + [
        (f"task.prompts.{name}.prompt", p.prompt) for name, p in (task.prompts or {}).items()
    ]
    for field, messages in where:
        for i, msg in enumerate(messages):
            try:
                names |= template_variables(msg.content)
            except TemplateSyntaxProblem as exc:
                raise InputError(str(loaded.path), f"{field}[{i}].content", str(exc)) from None
    return frozenset() if task.is_code else frozenset(names)


def check_code_task(loaded: LoadedSpec) -> None:
    """A code task's function imports and takes ``(input, prompts)``; what searches one prompt only is
    refused (fine-tunes)."""
    from promptopt.tasks import importable_from, load_function

    task = loaded.spec.task
    if task.function is None:
        return
    importable_from(loaded.base_dir)
    load_function(task.function, file=str(loaded.path), base_dir=loaded.base_dir)
    if loaded.spec.search.fine_tune.jobs:
        raise InputError(
            str(loaded.path),
            "search.fine_tune",
            "fine-tunes are searched for one-prompt tasks only; a code task's prompts cannot be fine-tuned yet",
        )


def check_data(loaded: LoadedSpec, dataset: Dataset) -> None:
    """Template variables present in every case; expected values inside the label list; references present
    where a scorer needs them."""
    spec = loaded.spec
    variables = check_templates(loaded)
    labels = spec.task.output.labels
    needs_expected = any(s.type not in ("regex", "json_valid", "llm_judge") for s in spec.scorers)
    for split_name in ("train", "validation", "test"):
        split = dataset.split(split_name)
        file = _split_file(loaded, split_name)
        for idx, case in enumerate(split.cases):
            missing = sorted(variables - set(case.input))
            if missing:
                raise InputError(
                    file,
                    f"{split_name}[{idx}].input",
                    f"template variable(s) {missing} not in this case's input fields "
                    f"{sorted(case.input)}; rename the placeholder or the data column",
                )
            if labels is not None and case.expected is not None and str(case.expected) not in labels:
                raise InputError(
                    file,
                    f"{split_name}[{idx}].expected",
                    f"{case.expected!r} is not one of task.output.labels {list(labels)}",
                )
            if needs_expected and case.expected is None and split_name != "train":
                raise InputError(
                    file,
                    f"{split_name}[{idx}].expected",
                    "missing, but a scorer compares with it (only regex, json_valid and "
                    "llm_judge scorers work without 'expected')",
                )


FINETUNE_MODULES = ("torch", "transformers", "peft", "gguf")
PROVIDER_BASE = "openai/"  # litellm's OpenAI fine-tuning API, for OpenAI and OpenAI-compatible servers
LORA_ONLY = ("rank", "alpha")


def check_fine_tune(loaded: LoadedSpec) -> None:
    """Each ``search.fine_tune`` job trains a base this machine has (a ``local/`` model, with the ``finetune``
    extra installed) or is a provider fine-tune of an ``openai/<model>`` base with a training price and no
    LoRA-only field. Called by ``optimize validate`` and by a run's plan (``plan_run``), not by ``eval``,
    which trains nothing."""
    import importlib.util

    local = False
    for i, job in enumerate(loaded.spec.search.fine_tune.jobs):
        base = job.base_model(loaded.spec.task.model)
        if base.startswith("local/"):
            _check_local_job(loaded, i, job, base)
            local = True
        else:
            _check_provider_job(loaded, i, job, base)
    missing = [m for m in FINETUNE_MODULES if local and importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            str(loaded.path),
            "search.fine_tune",
            f"training a LoRA needs the finetune extra ({', '.join(missing)} missing): pip install -e '.[finetune]'",
        )


def _check_local_job(loaded: LoadedSpec, i: int, job: FineTuneJob, base: str) -> None:
    from promptopt.models import LocalModelError, local_model_file

    field = f"search.fine_tune.jobs[{i}]"
    try:
        local_model_file(base)
    except LocalModelError as exc:
        raise InputError(str(loaded.path), f"{field}.base", str(exc)) from None
    if job.price_per_1m_training_tokens is not None:
        raise InputError(
            str(loaded.path),
            f"{field}.price_per_1m_training_tokens",
            f"only for a provider fine-tune (openai/<model>); a LoRA of {base} trains on this machine for $0",
        )


def _check_provider_job(loaded: LoadedSpec, i: int, job: FineTuneJob, base: str) -> None:
    field = f"search.fine_tune.jobs[{i}]"
    if not base.startswith(PROVIDER_BASE) or base == PROVIDER_BASE:
        whose = "" if job.base else " (the task's model; set base)"
        raise InputError(
            str(loaded.path),
            f"{field}.base",
            f"{base!r}{whose} cannot be fine-tuned: expected local/<model> (a LoRA on CPU) or openai/<model> "
            "(OpenAI's fine-tuning API, or an OpenAI-compatible server at task.params.extra.api_base); other "
            "providers' fine-tuning APIs are not supported",
        )
    written = sorted(set(LORA_ONLY) & job.model_fields_set)
    if written:
        raise InputError(
            str(loaded.path),
            f"{field}.{written[0]}",
            f"LoRA only: a provider fine-tune of {base} takes epochs (n_epochs) and learning_rate "
            "(learning_rate_multiplier); remove it",
        )
    if job.price_per_1m_training_tokens is None:
        raise InputError(
            str(loaded.path),
            f"{field}.price_per_1m_training_tokens",
            f"required for a provider fine-tune of {base}: its training price in dollars per 1M training tokens "
            "(e.g. 3.0), from the provider's price list (litellm's price map has none); the run reserves "
            "the estimated cost in budget.usd before the job starts",
        )


def load_and_check(loaded: LoadedSpec) -> Dataset:
    """Load the spec's dataset and run every check; the one entry point for ``validate``, ``eval`` and ``run``."""
    check_templates(loaded)
    check_code_task(loaded)
    dataset = load_dataset(loaded.spec.dataset, loaded.base_dir, str(loaded.path))
    check_data(loaded, dataset)
    return dataset
