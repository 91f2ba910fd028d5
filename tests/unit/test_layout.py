"""The package's shape: the layers of docs/architecture.md hold, nothing imports in a circle,
modules stay small enough to read."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

import djredis

PACKAGE = Path(djredis.__file__).parent
MAX_LINES = 500


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("djredis", cache_dir=None)


def _cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """Return one import cycle among djredis's modules, or None."""
    modules = sorted(graph.modules)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in modules:
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_module_imports_itself_through_a_circle(graph: grimp.ImportGraph) -> None:
    assert _cycle(graph) is None


def test_the_cycle_finder_sees_a_circle() -> None:
    circular = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b"):
        circular.add_module(name)
    circular.add_import(importer="pkg.a", imported="pkg.b")
    circular.add_import(importer="pkg.b", imported="pkg.a")
    assert _cycle(circular) == ["pkg.a", "pkg.b", "pkg.a"]


def test_core_imports_nothing_of_the_transport(graph: grimp.ImportGraph) -> None:
    for module in graph.find_descendants("djredis._core"):
        imported = graph.find_modules_directly_imported_by(module)
        assert not {m for m in imported if m.startswith(("djredis._io", "djredis._routing"))}


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_module_is_at_most_500_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines"
