"""Bad input: exit code 2, a message naming the file and the field, nothing written to the store."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from promptopt.cli.app import app

GOOD = {
    "task": {
        "name": "t",
        "model": "fake/m",
        "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
        "output": {"type": "label", "labels": ["positive", "negative"]},
    },
    "dataset": {"file": "data.jsonl", "split": {"train": 0.5, "validation": 0.25, "test": 0.25}},
    "scorers": [{"type": "exact_match"}],
}
ROWS = [{"input": {"text": f"t{i}"}, "expected": "positive" if i % 2 else "negative"} for i in range(8)]


def write_case(tmp: Path, spec=None, rows=None, raw_spec: str | None = None, data_text: str | None = None):
    spec_path = tmp / "spec.yaml"
    spec_path.write_text(raw_spec if raw_spec is not None else yaml.safe_dump(spec or GOOD))
    data = tmp / "data.jsonl"
    data.write_text(data_text if data_text is not None else "".join(json.dumps(r) + "\n" for r in (rows or ROWS)))
    return spec_path


def with_(path: str, value):
    spec = json.loads(json.dumps(GOOD))
    node = spec
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return spec


_DELETE = object()

CASES = {
    "malformed yaml": (dict(raw_spec="task: [unclosed\n  name: x"), "spec.yaml", "malformed YAML"),
    "spec not a mapping": (dict(raw_spec="- just\n- a list\n"), "spec.yaml", "mapping"),
    "missing task field": (dict(spec=with_("task.prompt", _DELETE)), "task.prompt", "Field required"),
    "unknown scorer": (dict(spec=with_("scorers", [{"type": "bleu"}])), "scorers[0]", "unknown scorer type"),
    "unknown field": (dict(spec=with_("task.temprature", 0.3)), "task.temprature", "unknown field"),
    "template variable absent": (
        dict(spec=with_("task.prompt", [{"role": "user", "content": "{{review}}"}])),
        "input",
        "['review'] not in this case's input",
    ),
    "template syntax": (
        dict(spec=with_("task.prompt", [{"role": "user", "content": "{{text"}])),
        "task.prompt[0].content",
        "template syntax error",
    ),
    "empty dataset": (dict(data_text=""), "data.jsonl", "empty"),
    "wrong column": (
        dict(rows=[{"inputs": {"text": "x"}, "expected": "positive"}]),
        "data.jsonl:1",
        "inputs: unknown column",
    ),
    "label list mismatch": (
        dict(rows=[{"input": {"text": "x"}, "expected": "neutral"}] * 4),
        "expected",
        "'neutral' is not one of task.output.labels",
    ),
    "unreadable data file": (dict(spec=with_("dataset.file", "missing.jsonl")), "missing.jsonl", "file not found"),
    "invalid json line": (
        dict(data_text='{"input": {"text": "a"}, "expected": "positive"}\n{oops\n'),
        "data.jsonl:2",
        "not valid JSON",
    ),
    "labels with one entry": (dict(spec=with_("task.output.labels", ["only"])), "task.output", "two"),
    "split ratios": (
        dict(spec=with_("dataset.split", {"train": 0.9, "validation": 0.9, "test": 0})),
        "dataset.split",
        "add up to 1",
    ),
    "bad regex": (
        dict(spec=with_("scorers", [{"type": "regex", "pattern": "("}])),
        "scorers[0].pattern",
        "not a valid regular expression",
    ),
    "custom scorer form": (
        dict(spec=with_("scorers", [{"type": "custom", "function": "no-colon"}])),
        "scorers[0].function",
        "should match pattern",
    ),
    "negative weight": (
        dict(spec=with_("scorers", [{"type": "exact_match", "weight": -1}])),
        "scorers[0].weight",
        "greater than or equal to 0",
    ),
    "unsupported data type": (
        dict(spec=with_("dataset.file", "data.parquet")),
        "data.parquet",
        "unsupported file type",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("command", ["eval", "validate"])
def test_bad_input_exits_2_naming_file_and_field(tmp_path, name, command):
    kwargs, where, what = CASES[name]
    spec_path = write_case(tmp_path, **kwargs)
    if name == "unsupported data type":
        (tmp_path / "data.parquet").write_text("x")
    store = tmp_path / "store.db"
    args = [command, str(spec_path)] + (
        ["--store", f"sqlite:///{store}", "--cache", str(tmp_path / "c")] if command == "eval" else []
    )
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert where in message and what in message, message
    assert ("spec.yaml" in message) or ("data." in message) or ("missing.jsonl" in message)
    assert not store.exists() and not (tmp_path / "c").exists()


def test_good_spec_validates(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(write_case(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "train/validation/test = 4/2/2" in result.output


def test_schema_is_json_schema_with_task_and_scorers():
    result = CliRunner().invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert set(schema["required"]) >= {"task", "dataset", "scorers"}
    assert "exact_match" in json.dumps(schema)


@pytest.mark.parametrize("option, value", [("--start", "warm"), ("--sampler", "cma"), ("--executor", "dask")])
def test_a_bad_run_option_exits_2_naming_it_before_anything_is_written(tmp_path, option, value):
    store = tmp_path / "store.db"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(write_case(tmp_path)),
            option,
            value,
            "--store",
            f"sqlite:///{store}",
            "--cache",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert option in message and repr(value) in message, message
    assert not store.exists() and not (tmp_path / "c").exists()


def test_a_region_start_without_the_guided_sampler_exits_2_before_anything_is_written(tmp_path):
    store = tmp_path / "store.db"
    args = ["run", str(write_case(tmp_path)), "--sampler", "tpe", "--start", "region", "--store", f"sqlite:///{store}"]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "--start" in message and "region needs --sampler guided, got --sampler tpe" in message, message
    assert not store.exists() and not (tmp_path / "c").exists()
