"""Architecture rules, checked on the source with ``ast`` (docs/architecture.md).

* A module imports another package's public names only: ``from promptopt.search import optuna_storage_url``,
  never ``promptopt.search._study``. A package is ``promptopt.<folder>`` for everything below one folder
  (``optimizer/search/...``, ``search_spaces/...``); the top-level modules (``optimizer/errors.py``) belong
  to ``promptopt``. Imports inside functions count too: they are deferred, not exempt.
* The subpackages import each other without a cycle, counting what runs at import time (module-level
  imports, not those inside functions or under ``if TYPE_CHECKING:``). Each top-level module is its own node.
* Each third-party adapter is imported in one place (the same rule as ruff's banned-api, here independent of
  ruff).

Each failure lists every offending import with its file and line.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder -> import name, as in setup.py.
ROOTS = {
    "optimizer": "promptopt",
    "search_spaces": "promptopt.search_spaces",
    "workers": "promptopt.workers",
    "cli": "promptopt.cli",
}
# Third-party module -> where it may be imported: a file, or a folder (ending in "/") and everything below it.
ADAPTERS = {
    "litellm": ("optimizer/models/_litellm.py",),
    "llama_cpp": ("optimizer/models/_local.py",),
    "ray": ("workers/",),
    "dspy": ("search_spaces/_dspy_proposer.py",),
    "torch": ("optimizer/finetune/_lora.py",),
    "transformers": ("optimizer/finetune/_lora.py",),
    "peft": ("optimizer/finetune/_lora.py",),
    "gguf": ("optimizer/finetune/_lora.py",),
}


@dataclass(frozen=True)
class Import:
    """One imported module as written in a source file, resolved to its absolute name."""

    path: str  # relative to the repository
    line: int
    target: str  # the module, e.g. "promptopt.search._study"
    names: tuple[str, ...]  # for ``from target import a, b``; empty for ``import target``
    module_level: bool  # runs at import time (not in a function, not under TYPE_CHECKING)

    def __str__(self) -> str:
        what = f"from {self.target} import {', '.join(self.names)}" if self.names else f"import {self.target}"
        return f"{self.path}:{self.line}: {what}"


@dataclass(frozen=True)
class Module:
    path: str
    name: str
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")


def module_name(relative: Path) -> str:
    root, *parts = relative.with_suffix("").parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([ROOTS[root], *parts])


@functools.cache
def modules() -> tuple[Module, ...]:
    found = []
    for folder in ROOTS:
        for file in sorted((REPO / folder).rglob("*.py")):
            relative = file.relative_to(REPO)
            found.append(Module(relative.as_posix(), module_name(relative), ast.parse(file.read_text(), str(file))))
    return tuple(found)


@functools.cache
def subpackages() -> frozenset[str]:
    """``promptopt.search``, ``promptopt.workers``, ...: the packages one level below ``promptopt``."""
    return frozenset(m.name for m in modules() if m.is_package and m.name.count(".") == 1)


def package_of(name: str) -> str:
    """The package a module belongs to: ``promptopt.search`` for ``promptopt.search._study``, ``promptopt``
    for a top-level module such as ``promptopt.errors`` (and for names outside ``promptopt``: their first part)."""
    head = ".".join(name.split(".")[:2])
    if head in subpackages():
        return head
    return name.split(".")[0]


def node_of(name: str) -> str:
    """The node of the import graph: a subpackage, a top-level module, or ``promptopt`` itself."""
    head = ".".join(name.split(".")[:2])
    return head if name.startswith("promptopt.") else name


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], module_level: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement, nested ones too, and whether it runs when the module is imported."""
    for node in body:
        yield node, module_level
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(node.body, False)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, False)
            yield from _statements(node.orelse, module_level)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                for child in getattr(node, field, ()):
                    # Handlers and match cases are not statements but hold a body of them.
                    inner = child.body if isinstance(child, ast.ExceptHandler | ast.match_case) else [child]
                    yield from _statements(inner, module_level)


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    base = base[: len(base) - node.level + (1 if module.is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: Module) -> Iterator[Import]:
    for node, module_level in _statements(module.tree.body, True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module.path, node.lineno, alias.name, (), module_level)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            yield Import(module.path, node.lineno, _resolve(module, node), names, module_level)


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def private_reach(importer: Module, imp: Import) -> str | None:
    """The private module or name of another package that ``imp`` reaches, or None."""
    if not imp.target.startswith("promptopt"):
        return None
    owner = package_of(imp.target)
    if owner == package_of(importer.name):
        return None
    inner = imp.target.split(".")[owner.count(".") + 1 :]
    if any(_private(part) for part in inner):
        return imp.target
    private_names = [name for name in imp.names if _private(name)]
    return f"{imp.target}.{private_names[0]}" if private_names else None


def cross_package_private_imports() -> list[str]:
    found = []
    for module in modules():
        for imp in imports_of(module):
            reached = private_reach(module, imp)
            if reached is not None:
                found.append(f"{imp}  ({package_of(module.name)} reaches {reached})")
    return found


def import_graph() -> dict[str, dict[str, Import]]:
    """node -> {imported node: the first module-level import that makes the edge}."""
    graph: dict[str, dict[str, Import]] = {}
    for module in modules():
        source = node_of(module.name)
        edges = graph.setdefault(source, {})
        for imp in imports_of(module):
            targets = (
                [imp.target]
                if not imp.names or imp.target != "promptopt"
                else [f"promptopt.{name}" for name in imp.names]
            )  # ``from promptopt import errors`` imports a module
            for target in targets:
                if imp.module_level and target.startswith("promptopt") and node_of(target) != source:
                    edges.setdefault(node_of(target), imp)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle through each strongly connected group of nodes (Tarjan), each as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph.get(node, {})):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_within(graph, group) for group in sorted(groups)]


def _cycle_within(graph: dict[str, dict[str, Import]], group: list[str]) -> list[str]:
    # The shortest way back to the group's first node, breadth first, staying inside the group.
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for succ in sorted(graph.get(node, {})):
                if succ == start:
                    return [*paths[node], start]
                if succ in members and succ not in paths:
                    paths[succ] = [*paths[node], succ]
                    nxt.append(succ)
        frontier = nxt
    raise AssertionError(f"no cycle through {group}")  # cannot happen for a strongly connected group


def describe(graph: dict[str, dict[str, Import]], cycle: list[str]) -> str:
    steps = [f"    {a} -> {b}: {graph[a][b]}" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def _allowed(path: str, places: tuple[str, ...]) -> bool:
    return any(path.startswith(place) if place.endswith("/") else path == place for place in places)


def adapter_imports() -> list[Import]:
    """Every import of an adapted third-party module, wherever it is."""
    return [imp for module in modules() for imp in imports_of(module) if imp.target.split(".")[0] in ADAPTERS]


def misplaced_adapter_imports() -> list[str]:
    found = []
    for imp in adapter_imports():
        places = ADAPTERS[imp.target.split(".")[0]]
        if not _allowed(imp.path, places):
            found.append(f"{imp}  (allowed only in {', '.join(places)})")
    return found


def test_no_module_imports_another_packages_private_module():
    offending = cross_package_private_imports()
    if offending:
        pytest.fail(
            f"{len(offending)} imports reach into another package's private modules; import the name from "
            "the package (add it to its __init__ and __all__):\n" + "\n".join(offending),
            pytrace=False,
        )


def test_subpackages_import_each_other_without_a_cycle():
    graph = import_graph()
    found = cycles(graph)
    if found:
        pytest.fail(
            f"{len(found)} import cycles between subpackages (module-level imports; move one import into "
            "the function that needs it, or the shared piece into a lower package):\n"
            + "\n".join(describe(graph, cycle) for cycle in found),
            pytrace=False,
        )


def test_third_party_adapters_are_imported_only_in_their_modules():
    offending = misplaced_adapter_imports()
    if offending:
        pytest.fail("third-party modules imported outside their adapter:\n" + "\n".join(offending), pytrace=False)


@pytest.mark.parametrize(
    ("library", "place"),
    [
        ("litellm", "optimizer/models/_litellm.py"),
        ("llama_cpp", "optimizer/models/_local.py"),
        ("ray", "workers/"),
        ("dspy", "search_spaces/_dspy_proposer.py"),
    ],
)
def test_the_adapter_scan_finds_each_adapter_where_it_lives(library, place):
    # Guards the scan itself: were it blind, the rule above would pass on any code.
    assert any(imp.target.split(".")[0] == library and _allowed(imp.path, (place,)) for imp in adapter_imports())


def _module(source: str, path: str = "optimizer/reports/_x.py") -> Module:
    return Module(path, module_name(Path(path)), ast.parse(source))


def test_the_checks_see_function_level_relative_and_from_imports():
    source = (
        "from promptopt.search import optuna_storage_url\nfrom promptopt.reports._values import RunReport\n"
        "def f():\n    from promptopt.search._study import open_study\n"
        "from promptopt.engine import _runner\nfrom .._x import y\nimport promptopt.store._sql as sql\n"
    )
    module = _module(source)
    reached = [private_reach(module, imp) for imp in imports_of(module)]
    assert reached == [
        None,
        None,
        "promptopt.search._study",
        "promptopt.engine._runner",
        "promptopt._x",
        "promptopt.store._sql",
    ]
    assert [imp.module_level for imp in imports_of(module)] == [True, True, False, True, True, True]


def test_the_graph_leaves_out_type_checking_and_function_imports():
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from promptopt.search import Candidate\n"
        "else:\n    from promptopt import errors\ntry:\n    import promptopt.store\nexcept ImportError:\n"
        "    pass\nclass A:\n    def f(self):\n        import promptopt.engine\n"
    )
    assert [(imp.target, imp.module_level) for imp in imports_of(_module(source))] == [
        ("typing", True),
        ("promptopt.search", False),
        ("promptopt", True),
        ("promptopt.store", True),
        ("promptopt.engine", False),
    ]


def test_the_cycle_finder_reports_the_whole_cycle():
    edge = Import("a.py", 1, "x", (), True)
    graph = {"a": {"b": edge}, "b": {"c": edge}, "c": {"a": edge, "d": edge}, "d": {}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b": edge}, "b": {}}) == []
