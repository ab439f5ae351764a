"""Every docstring example of the package runs and prints what it shows: doctest over every module of every
import root (found with pkgutil.walk_packages), with a floor on the examples found so that it cannot pass on none."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules that cannot be imported on their own; neither has an example (checked below).
NOT_IMPORTABLE = {
    "promptopt.store.migrations.env": "Alembic's migration environment: it reads alembic.context.config, which "
    "exists only while alembic runs it",
    "promptopt.cli.__main__": "runs the optimize command when imported (python -m promptopt.cli)",
}
# Examples that must be among those found: the pure functions whose docstrings show them.
REQUIRED = {
    "promptopt.stats.format_p",
    "promptopt.stats.paired_permutation_p",
    "promptopt.engine.parse_label",
    "promptopt.data.content_hash",
    "promptopt.data.canonical_json",
    "promptopt.spec.render_template",
    "promptopt.spec.template_variables",
}
MIN_EXAMPLES = 30  # examples that ran and passed when this floor was set: 36 (of 39 run, 3 known broken)


def import_roots() -> dict[str, str]:
    """Folder -> import name, from setup.py's ROOTS (the one place that maps them): ``optimizer`` -> ``promptopt``."""
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ROOTS" for t in node.targets):
            return {folder: name for name, folder in ast.literal_eval(node.value).items()}
    raise AssertionError("setup.py has no ROOTS mapping")


def walked_modules() -> list[str]:
    """Every module of every import root, as pkgutil finds them (each root lives in its own folder, so each is
    walked: walking ``promptopt`` alone does not reach ``promptopt.cli``)."""
    names: dict[str, None] = {}
    for name in import_roots().values():
        names[name] = None
        for info in pkgutil.walk_packages(importlib.import_module(name).__path__, f"{name}."):
            names[info.name] = None
    return list(names)


def in_package(file: Path, top: Path) -> bool:
    """``file`` is importable: its folder and every folder up to ``top`` have an ``__init__.py``."""
    folder = file.parent
    while (folder / "__init__.py").is_file():
        if folder == top:
            return True
        folder = folder.parent
    return False


def module_files() -> dict[str, Path]:
    """Module name -> file, from the folders: every ``.py`` file inside a package."""
    found = {}
    for folder, root in import_roots().items():
        for file in sorted((ROOT / folder).rglob("*.py")):
            if in_package(file, ROOT / folder):
                parts = file.relative_to(ROOT / folder).with_suffix("").parts
                found[".".join([root, *parts]).removesuffix(".__init__")] = file
    return found


def example_name(test: doctest.DocTest, module: str) -> str:
    """``promptopt.sdk._logger.PromptLogger`` -> ``promptopt.sdk.PromptLogger``."""
    return ".".join([*module.split(".")[:2], test.name[len(module) + 1 :]]).rstrip(".")


def test_the_walk_finds_every_module_in_the_folders():
    walked, files = set(walked_modules()), set(module_files())
    assert walked == files, f"only walked: {sorted(walked - files)}; only on disk: {sorted(files - walked)}"
    assert {"promptopt.cli.app", "promptopt.workers", "promptopt.search_spaces", "promptopt.stats._paired"} <= walked


def test_the_modules_left_out_have_no_examples():
    files = module_files()
    for name in NOT_IMPORTABLE:
        assert ">>>" not in files[name].read_text(), f"{name} has examples this test cannot run"


def test_every_docstring_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    failed, found = set(), set()
    for name in walked_modules():
        if name in NOT_IMPORTABLE:
            continue
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if not test.examples:
                continue
            found.add(example_name(test, name))
            out: list[str] = []
            if runner.run(test, out=out.append).failed:
                failed.add(example_name(test, name))
                report += out
    results = runner.summarize(verbose=False)
    assert not failed, "".join(report)
    assert REQUIRED <= found, sorted(REQUIRED - found)
    assert results.attempted - results.failed >= MIN_EXAMPLES, results


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_required_example_fails_when_its_output_is_wrong(name):
    """The runner compares output: each required docstring with its first expected output changed fails."""
    package, _, attribute = name.rpartition(".")
    function = getattr(importlib.import_module(package), attribute)
    module = inspect.getmodule(function)
    (test,) = [t for t in doctest.DocTestFinder().find(function, name, module=module) if t.examples]
    example = next(e for e in test.examples if e.want)
    example.want = "not " + example.want
    assert doctest.DocTestRunner().run(test, out=lambda _: None).failed == 1
