"""The house's floors: imports run keytokens (the Python API) -> studies -> pipeline -> engines -> plumbing -> encoders -> common, never in a
circle, never to another module's `_private` name, and the README's layout names exactly the modules on disk.

The graph is read with ast from every import in a file, the ones inside functions included (a lazy import is still
a dependency: it only moves the cost of loading to the first call)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOORS = ("keytokens", "studies", "pipeline", "engines", "plumbing", "encoders", "common")  # top first
RANK = {folder: level for level, folder in enumerate(FLOORS)}


def modules(root: Path) -> dict[str, Path]:
    return {f"{folder}.{path.stem}": path for folder in FLOORS for path in sorted((root / folder).glob("*.py"))
            if path.stem != "__init__"}


def imports(path: Path) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every import of one of our folders in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] in RANK]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in RANK:
            for alias in node.names:
                if node.module in RANK:  # `from plumbing import cli`: the module is plumbing.cli
                    found.append((f"{node.module}.{alias.name}", "", node.lineno))
                else:
                    found.append((node.module, alias.name, node.lineno))
    return found


def upward_imports(root: Path) -> list[str]:
    return [f"{name} imports {target} (line {line}): {name.split('.')[0]}/ sits below {target.split('.')[0]}/"
            for name, path in modules(root).items() for target, _, line in imports(path)
            if RANK[target.split(".")[0]] < RANK[name.split(".")[0]]]


def circles(root: Path) -> list[str]:
    known = modules(root)
    edges = {name: sorted({target for target, _, _ in imports(path) if target in known and target != name})
             for name, path in known.items()}
    seen, stack, found = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            found.append(" -> ".join(stack[stack.index(node):] + [node]))
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in edges[node]:
            visit(target)
        stack.pop()

    for node in sorted(edges):
        visit(node)
    return found


def private_imports(root: Path) -> list[str]:
    return [f"{name} imports {target}.{imported} (line {line})" for name, path in modules(root).items()
            for target, imported, line in imports(path) if imported.startswith("_")]


@pytest.mark.parametrize("check", [upward_imports, circles, private_imports])
def test_the_house_keeps_its_floors(check):
    problems = check(REPO)
    assert not problems, "\n".join(problems)


def test_the_walk_sees_a_circle_an_upward_import_and_a_private_name(tmp_path):
    """The checks can fail: two plumbing modules import each other (one lazily), one reaches up into a stage's
    private name."""
    for folder in FLOORS:
        (tmp_path / folder).mkdir()
    (tmp_path / "plumbing" / "a.py").write_text("from plumbing import b\n")
    (tmp_path / "plumbing" / "b.py").write_text("def f():\n    from plumbing.a import x\n    from pipeline.s import _y\n")
    (tmp_path / "pipeline" / "s.py").write_text("")
    assert upward_imports(tmp_path) == ["plumbing.b imports pipeline.s (line 3): plumbing/ sits below pipeline/"]
    assert circles(tmp_path) == ["plumbing.a -> plumbing.b -> plumbing.a"]
    assert private_imports(tmp_path) == ["plumbing.b imports pipeline.s._y (line 3)"]


def test_readme_layout_is_the_tree():
    """The README's layout block lists, folder by folder, exactly the modules that exist."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    listed, folder = set(), None
    for line in block.splitlines():
        if match := re.match(r"^(\w+)/\s", line):
            folder = match.group(1)
        elif (match := re.match(r"^\s+(\w+)\.py\s", line)) and folder in RANK:
            listed.add(f"{folder}.{match.group(1)}")
    on_disk = set(modules(REPO))
    assert listed == on_disk, f"README lists but missing: {sorted(listed - on_disk)}; on disk, not listed: {sorted(on_disk - listed)}"
