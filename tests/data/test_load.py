"""Datasets: JSONL and CSV, splits by ratio or files, carving validation out of train, stable ids."""

import json

import pytest

from promptopt.data import load_dataset
from promptopt.errors import InputError
from promptopt.spec import DatasetSpec


def write_jsonl(path, n, label=lambda i: "a" if i % 2 else "b"):
    path.write_text("".join(json.dumps({"input": {"text": f"t{i}"}, "expected": label(i)}) + "\n" for i in range(n)))


def test_ratio_split_is_seeded_disjoint_and_complete(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", 40)
    spec = DatasetSpec(file="d.jsonl", split={"train": 0.5, "validation": 0.25, "test": 0.25}, seed=3)
    a, b = load_dataset(spec, tmp_path), load_dataset(spec, tmp_path)
    assert a.hash == b.hash and (len(a.train), len(a.validation), len(a.test)) == (20, 10, 10)
    ids = [c.id for s in (a.train, a.validation, a.test) for c in s.cases]
    assert len(ids) == len(set(ids)) == 40
    other = load_dataset(spec.model_copy(update={"seed": 4}), tmp_path)
    assert other.validation.hash != a.validation.hash


def test_validation_carved_out_of_train_never_overlaps_it(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", 50)
    write_jsonl(tmp_path / "test.jsonl", 5)
    ds = load_dataset(DatasetSpec(train="train.jsonl", test="test.jsonl", validation_from_train=12), tmp_path)
    assert len(ds.validation) == 12 and len(ds.train) == 38
    assert not {c.id for c in ds.train.cases} & {c.id for c in ds.validation.cases}


def test_csv_columns_become_input_fields(tmp_path):
    (tmp_path / "v.csv").write_text('input.text,input.lang,expected,metadata\nhola,es,greeting,"{""src"": 1}"\n')
    ds = load_dataset(DatasetSpec(validation="v.csv"), tmp_path)
    case = ds.validation.cases[0]
    assert case.input == {"text": "hola", "lang": "es"} and case.expected == "greeting"
    assert case.metadata == {"src": 1}


def test_duplicate_rows_get_distinct_stable_ids(tmp_path):
    (tmp_path / "v.jsonl").write_text('{"input": {"x": 1}, "expected": 1}\n' * 3)
    ids = [c.id for c in load_dataset(DatasetSpec(validation="v.jsonl"), tmp_path).validation.cases]
    assert len(set(ids)) == 3 and ids[1] == ids[0] + "-2"


def test_limit_takes_a_seeded_sample(tmp_path):
    write_jsonl(tmp_path / "v.jsonl", 30)
    spec = DatasetSpec(validation="v.jsonl", limit={"validation": 7}, seed=1)
    assert len(load_dataset(spec, tmp_path).validation) == 7
    assert load_dataset(spec, tmp_path).validation.hash == load_dataset(spec, tmp_path).validation.hash


def test_validation_from_train_needs_a_train_file():
    with pytest.raises(ValueError, match="validation_from_train"):
        DatasetSpec(validation="v.jsonl", validation_from_train=3)


def test_metadata_must_be_an_object(tmp_path):
    (tmp_path / "v.jsonl").write_text('{"input": {"x": 1}, "metadata": [1]}\n')
    with pytest.raises(InputError, match="metadata"):
        load_dataset(DatasetSpec(validation="v.jsonl"), tmp_path)
