"""The house's floors: imports run keytokens (the Python API) -> studies -> pipeline -> steps -> engines -> plumbing -> encoders ->
common, never in a circle, never to another module's `_private` name, and the README's layout names exactly the modules
on disk. pipeline/ holds the stages a user calls and nothing else: each module is a command line (`main` and nothing
beside it) that make runs or the README names, and no stage imports another stage (what they share is in steps/).

The graph is read with ast from every import in a file, the ones inside functions included (a lazy import is still
a dependency: it only moves the cost of loading to the first call)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOORS = ("keytokens", "studies", "pipeline", "steps", "engines", "plumbing", "encoders", "common")  # top first
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


def stage_imports(root: Path) -> list[str]:
    """Imports of one stage by another: a stage shares its work through steps/, never through another stage."""
    return [f"{name} imports {target} (line {line}): a stage imports no stage; move what they share to steps/"
            for name, path in modules(root).items() if name.startswith("pipeline.")
            for target, _, line in imports(path) if target.startswith("pipeline.") and target != name]


def non_stages(root: Path, named: set[str]) -> list[str]:
    """pipeline/ modules that are not stages: not run by make or named in the README's stage list, or holding more
    than their command line (`main`)."""
    problems = []
    for name, path in modules(root).items():
        if not name.startswith("pipeline."):
            continue
        defined = [node.name for node in ast.parse(path.read_text()).body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        if defined != ["main"]:
            problems.append(f"{name} defines {defined}: a stage module holds its main() only; the rest goes to steps/")
        if name not in named:
            problems.append(f"{name} is neither run by a make target nor named in the README's stage list")
    return problems


def make_stages() -> set[str]:
    from plumbing.params import EXPORT_MODULES, TARGETS

    return ({module for target in TARGETS.values() for module, _ in target.stages}
            | {module for module, _ in EXPORT_MODULES.values()})


def readme_stages() -> set[str]:
    """The modules of the README's sentence that opens "Each stage is also a CLI"."""
    readme = (REPO / "README.md").read_text()
    sentence = readme.split("Each stage is also a CLI", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"pipeline\.\w+", sentence))


def test_pipeline_modules_are_stages_and_no_stage_imports_a_stage():
    problems = non_stages(REPO, make_stages() | readme_stages()) + stage_imports(REPO)
    assert not problems, "\n".join(problems)
    missing = {m for m in make_stages() if m.startswith("pipeline.")} - set(modules(REPO))
    assert not missing, f"make runs stages that do not exist: {sorted(missing)}"


def test_the_stage_checks_can_fail(tmp_path):
    """A stage that imports another, one that keeps a helper beside its main, and one nobody runs are all caught."""
    for folder in FLOORS:
        (tmp_path / folder).mkdir()
    (tmp_path / "pipeline" / "a.py").write_text("def main():\n    from pipeline.b import main as other\n")
    (tmp_path / "pipeline" / "b.py").write_text("def helper():\n    pass\n\n\ndef main():\n    pass\n")
    assert stage_imports(tmp_path) == ["pipeline.a imports pipeline.b (line 2): a stage imports no stage; move what "
                                       "they share to steps/"]
    assert non_stages(tmp_path, {"pipeline.a"}) == [
        "pipeline.b defines ['helper', 'main']: a stage module holds its main() only; the rest goes to steps/",
        "pipeline.b is neither run by a make target nor named in the README's stage list"]
