"""A fresh clone is all the project needs: no tracked file points at a folder beside the repository, and a copy
of the tracked files in a folder with nothing beside it validates every experiment spec and loads the data of
every benchmark from inside itself (experiments/datasets/, whose README states what is in each file)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZE = Path(sys.executable).with_name("optimize")  # the console script of the venv running the tests
DATASETS = ROOT / "experiments" / "datasets"
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# A path out of the repository into the shared folder beside it, in any of the forms it took: a relative path
# in a spec or a doc, a pathlib join, the machine's absolute path. "shared-cache" (a test's cache folder name)
# is not such a path. This file names the patterns, so the scan skips it.
OUTSIDE = re.compile(
    r"""
    \.\./+shared(?![\w-])                          # ../shared, ../../../shared/datasets
  | shared/+datasets | /work/+shared               # the folder by name, or the machine's absolute path
  | /\s*["']shared["'] | ["']shared["']\s*/        # REPO.parent / "shared" / "datasets"
  | ["']shared["']\s*,\s*["']datasets["']          # os.path.join(.., "shared", "datasets")
""",
    re.VERBOSE,
)


def tracked_files(root: Path = ROOT) -> list[str]:
    """The files of a fresh clone: those git tracks that exist in the working tree (a staged deletion is gone)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (root / name).is_file()]


def validate(spec: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``optimize validate SPEC`` from ``cwd``, as a user runs it."""
    return subprocess.run([str(OPTIMIZE), "validate", str(spec)], cwd=cwd, capture_output=True, text=True, timeout=120)


def experiment_specs(root: Path = ROOT) -> list[Path]:
    specs = sorted((root / "experiments").glob("*/spec.yaml"))
    assert len(specs) >= 4, specs  # demo, sst2, trec, subj
    return specs


def test_the_pattern_finds_every_form_an_outside_path_took():
    for text in (
        "train: ../../../shared/datasets/sst2-train.jsonl",
        'DATASETS = REPO.parent / "shared" / "datasets"',
        "see `../shared/KNOWN-TRAPS.md`",
        "/work/shared/datasets",
        'os.path.join("..", "shared", "datasets")',
    ):
        assert OUTSIDE.search(text), text
    for text in (
        'registry.versions("shared")',
        'cache_dir="../shared-cache"',
        "the shared search section",
        "train: ../datasets/sst2-train.jsonl",
    ):
        assert not OUTSIDE.search(text), text


def test_no_tracked_file_refers_to_a_folder_beside_the_repo():
    found = []
    for name in tracked_files():
        if name.startswith("experiments/results/") or name.endswith(".html") or name == THIS_FILE:
            continue  # recorded results keep the paths they ran with
        text = (ROOT / name).read_bytes().decode("utf-8", errors="replace")
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert not found, "paths outside the repository (use experiments/datasets/ instead):\n" + "\n".join(found)


# Runs in the copy, with the copy's experiments/ as its working directory and first on sys.path: the data-loading
# code of every benchmark whose smoke test once needed the folder beside the repo. Prints what it read, as JSON.
PROBE = """
import json, sys
from pathlib import Path

clone, scratch = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
import bench_engine, bench_local_model, bench_search
from promptopt.spec import load_spec
from promptopt.validate import load_and_check

out = {"modules": [m.__file__ for m in (bench_engine, bench_local_model, bench_search)],
       "engine": {"datasets": str(bench_engine.DATASETS.resolve()), "rows": len(bench_engine.read_rows(50))},
       "local_model": {"datasets": str(bench_local_model.DATASETS.resolve()),
                       "rows": [len(bench_local_model.read_jsonl(bench_local_model.DATASETS / name))
                                for name in ("sst2-train.jsonl", "sst2-dev.jsonl")]},
       "search": {}}
for dataset in bench_search.DATASETS:
    spec = bench_search.derived_spec(dataset, scratch / dataset, validation_rows=5, test_rows=5, trials=1,
                                     propose=None, strategies=None, small=False)
    loaded = load_spec(spec)
    data = load_and_check(loaded)
    files = [getattr(loaded.spec.dataset, key) for key in ("file", "train", "validation", "test")]
    out["search"][dataset] = {"files": [str(Path(f).resolve()) for f in files if f],
                              "rows": [len(data.split(s)) for s in ("train", "validation", "test")]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files copied into ``<tmp>/clone``; ``<tmp>`` holds nothing else, so no path out of the copy
    leads anywhere."""
    folder = tmp_path_factory.mktemp("fresh") / "clone"
    for name in tracked_files():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, target)
    assert [p.name for p in folder.parent.iterdir()] == ["clone"]
    return folder


def test_the_copy_validates_every_experiment_spec(clone):
    # From the copy's root: the data paths must resolve against the spec's folder, not the working directory.
    for spec in experiment_specs(clone):
        out = validate(spec.relative_to(clone), cwd=clone)
        assert out.returncode == 0, f"{spec.relative_to(clone)}: {out.stdout}{out.stderr}"
        assert out.stdout.startswith("ok "), out.stdout


def test_the_copy_loads_every_benchmarks_data_from_inside_itself(clone):
    scratch = clone / ".probe"  # inside the copy: nothing may be written beside it either
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(clone), str(scratch)],
        cwd=clone / "experiments",
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    read = json.loads(out.stdout.splitlines()[-1])
    inside = clone.resolve() / "experiments" / "datasets"
    assert all(Path(m).resolve().is_relative_to(clone.resolve()) for m in read["modules"]), read["modules"]
    assert Path(read["engine"]["datasets"]) == inside and read["engine"]["rows"] == 50
    assert Path(read["local_model"]["datasets"]) == inside and read["local_model"]["rows"] == [3000, 872]
    assert set(read["search"]) == {"sst2", "trec", "subj"}
    for dataset, got in read["search"].items():
        assert got["files"] and all(Path(f).is_relative_to(inside) for f in got["files"]), (dataset, got)
        assert got["rows"][1:] == [5, 5] and got["rows"][0] > 1000, (dataset, got)


def _readme_table() -> dict[str, tuple[int, dict[str, int]]]:
    """File -> (rows, rows per label), from the table of experiments/datasets/README.md."""
    table = {}
    for line in (DATASETS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].endswith(".jsonl`"):
            labels = {m.group(1): int(m.group(2).replace(",", "")) for m in re.finditer(r"([a-z]+) ([\d,]+)", cells[2])}
            table[cells[0].strip("`")] = (int(cells[1].replace(",", "")), labels)
    return table


def test_the_datasets_readme_describes_every_file_as_it_is():
    table = _readme_table()
    assert set(table) == {p.name for p in DATASETS.glob("*.jsonl")}
    for name, (rows, labels) in table.items():
        records = [json.loads(line) for line in (DATASETS / name).read_text().splitlines()]
        counts: dict[str, int] = {}
        for record in records:
            assert set(record) <= {"input", "expected", "metadata"} and isinstance(record["input"], dict), name
            counts[record["expected"]] = counts.get(record["expected"], 0) + 1
        assert (len(records), counts) == (rows, labels), name
