"""Checks of a spec against its data, made before any model call: every problem names the file and field."""

from __future__ import annotations

from promptopt.data import Dataset, load_dataset
from promptopt.errors import InputError
from promptopt.spec import LoadedSpec, TemplateSyntaxProblem, template_variables


def _split_file(loaded: LoadedSpec, split: str) -> str:
    ds = loaded.spec.dataset
    rel = ds.file or getattr(ds, split) or ""
    return str(loaded.base_dir / rel) if rel else str(loaded.path)


def check_templates(loaded: LoadedSpec) -> frozenset[str]:
    """Parse every message template; return the variables they read."""
    names: set[str] = set()
    for i, msg in enumerate(loaded.spec.task.prompt):
        try:
            names |= template_variables(msg.content)
        except TemplateSyntaxProblem as exc:
            raise InputError(str(loaded.path), f"task.prompt[{i}].content", str(exc)) from None
    return frozenset(names)


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


def check_fine_tune(loaded: LoadedSpec) -> None:
    """Each ``search.fine_tune`` job trains a base this machine has (a ``local/`` model) with the
    ``finetune`` extra installed. Called by ``optimize validate`` and by a run's plan (``plan_run``), not by
    ``eval``, which trains nothing."""
    import importlib.util

    from promptopt.models import LocalModelError, local_model_file

    jobs = loaded.spec.search.fine_tune.jobs
    for i, job in enumerate(jobs):
        base = job.base_model(loaded.spec.task.model)
        field = f"search.fine_tune.jobs[{i}].base"
        if not base.startswith("local/"):
            whose = "" if job.base else " (the task's model; set base)"
            raise InputError(
                str(loaded.path),
                field,
                f"{base!r}{whose} cannot be fine-tuned here yet: only local/<model> bases train (a LoRA on "
                "CPU); provider fine-tunes through litellm are not built",
            )
        try:
            local_model_file(base)
        except LocalModelError as exc:
            raise InputError(str(loaded.path), field, str(exc)) from None
    missing = [m for m in FINETUNE_MODULES if jobs and importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            str(loaded.path),
            "search.fine_tune",
            f"training a LoRA needs the finetune extra ({', '.join(missing)} missing): pip install -e '.[finetune]'",
        )


def load_and_check(loaded: LoadedSpec) -> Dataset:
    """Load the spec's dataset and run every check; the one entry point for ``validate``, ``eval`` and ``run``."""
    check_templates(loaded)
    dataset = load_dataset(loaded.spec.dataset, loaded.base_dir, str(loaded.path))
    check_data(loaded, dataset)
    return dataset
