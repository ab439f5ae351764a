"""Type-check the package as it is imported: ``promptopt`` is four folders (setup.py's ``ROOTS``), which mypy
cannot map by itself, so this builds a tree of links in ``build/typecheck/`` and runs mypy (configured in
pyproject.toml: strict, with the pydantic plugin) on it, printing each finding under its real path.

    python scripts/typecheck.py          # exit 1 on any finding
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def roots() -> dict[str, str]:
    """``ROOTS`` of setup.py (import name -> folder), read without running setup()."""
    module = ast.parse((ROOT / "setup.py").read_text())
    for node in module.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ROOTS" for t in node.targets):
            return ast.literal_eval(node.value)  # type: ignore[no-any-return]
    raise SystemExit("setup.py defines no ROOTS")


def link_tree() -> dict[Path, Path]:
    """Link every package folder where its import name puts it; returns link -> real folder."""
    links: dict[Path, Path] = {}
    for name, folder in sorted(roots().items()):
        target = TREE.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in (ROOT / folder).iterdir():
            link = target / entry.name
            if entry.name == "__pycache__" or (link.exists() and not link.is_symlink()):
                continue
            if link.is_symlink():
                link.unlink()
            link.symlink_to(entry)
            links[link] = entry
    for link in list(TREE.rglob("*")):  # links to files that were removed or renamed
        if link.is_symlink() and not link.exists():
            link.unlink()
    return links


def main() -> int:
    links = link_tree()
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(TREE / "promptopt")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    prefixes = sorted(
        ((str(link.relative_to(ROOT)), str(real.relative_to(ROOT))) for link, real in links.items()),
        key=lambda p: -len(p[0]),
    )
    for line in (out.stdout + out.stderr).splitlines():
        for link, real in prefixes:
            if line.startswith(link):
                line = real + line[len(link) :]
                break
        print(line)
    return out.returncode


if __name__ == "__main__":
    raise SystemExit(main())
