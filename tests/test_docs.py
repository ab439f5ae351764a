"""The docs name only what exists: every repository path in README.md, docs/architecture.md and the lint
messages of pyproject.toml is a file or folder of the repository, and every subpackage is listed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/architecture.md", "pyproject.toml"]
TOP = ("optimizer", "search_spaces", "workers", "cli", "tests", "experiments", "scripts", "docs", ".ci")
# A path: starts at a top-level folder of the repository, then folders and a file or folder name.
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]*[\w/])")


def named_paths(text: str) -> set[str]:
    return {m.rstrip("/") for m in PATH.findall(text) if "*" not in m and "<" not in m}


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_doc_names_exists(doc):
    text = (ROOT / doc).read_text()
    missing = sorted(p for p in named_paths(text) if not (ROOT / p).exists())
    assert not missing, f"{doc} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_no_doc_names_a_path_under_the_import_root(doc):
    """``promptopt`` is the import name; on disk the package is ``optimizer/`` (and three more roots)."""
    found = sorted(set(re.findall(r"(?<![\w./~-])promptopt/[\w./-]+", (ROOT / doc).read_text())))
    assert not found, f"{doc} names import paths as files: {found} (the folder is optimizer/, see setup.py)"


def test_the_architecture_and_the_readme_list_every_subpackage():
    subpackages = sorted(p.name for p in (ROOT / "optimizer").iterdir() if (p / "__init__.py").is_file())
    for doc in ("README.md", "docs/architecture.md"):
        text = (ROOT / doc).read_text()
        missing = [s for s in subpackages if f"`{s}/`" not in text and f"optimizer/{s}/" not in text]
        assert not missing, f"{doc} does not list the subpackages {missing}"


def test_the_path_pattern_finds_paths_and_skips_globs():
    assert named_paths("see `optimizer/search/_run.py`, optimizer/engine/ and experiments/*/spec.yaml.") == {
        "optimizer/search/_run.py",
        "optimizer/engine",
    }
