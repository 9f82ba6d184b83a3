"""The package's imports follow its data flow: no circle, and no import from a floor to one above it.

Reads every module's imports from its source (module level, inside functions, under
``TYPE_CHECKING``: all of them), so a lazy import cannot hide an edge that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "misalignlab"
# Floors, lowest first; the ground floor holds the package's top-level modules.
FLOORS = (
    "",
    "lvm",
    "data",
    "models",
    "train",
    "detect",
    "strategies",
    "evaluate",
    "pilot",
    "report",
    "workflows",
    "cli",
)
FACE = "misalignlab"  # the package's __init__: the public API, a face over every floor, imported by none of them


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every misalignlab module ``path`` imports (``from pkg import module`` resolved to the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("misalignlab")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("misalignlab"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m != name}


def floor(name: str) -> int:
    parts = name.split(".")
    if len(parts) == 1:
        return 0
    return FLOORS.index(parts[1]) if parts[1] in FLOORS else 0


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) & known for name, path in mods.items()}


def test_every_folder_is_a_known_floor():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders <= set(FLOORS), f"folders without a floor: {sorted(folders - set(FLOORS))}"


def test_no_import_runs_back_up_a_floor():
    upward = [
        f"{a} (floor {FLOORS[floor(a)] or 'ground'}) imports {b} (floor {FLOORS[floor(b)]})"
        for a, deps in graph().items()
        if a != FACE
        for b in deps
        if floor(b) > floor(a)
    ]
    assert not upward, "imports that run back up:\n" + "\n".join(sorted(upward))


def test_no_module_imports_the_public_face():
    users = sorted(a for a, deps in graph().items() if FACE in deps and a != FACE)
    assert not users, f"modules importing the package face {FACE}: {users}"


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(g[node]):
            if dep == FACE or node == FACE:
                continue
            if state.get(dep) == 1:
                circles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" → ".join(c) for c in circles)


@pytest.mark.parametrize("source, edge", [("import misalignlab.cli", "misalignlab.cli")])
def test_the_reader_sees_lazy_imports(tmp_path, source, edge):
    f = tmp_path / "m.py"
    f.write_text(f"def later():\n    {source}\n")
    assert edge in imports_of("misalignlab.x", f, {"misalignlab.cli"})
