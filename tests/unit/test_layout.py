"""The package's shape: the layers of docs/architecture.md hold, nothing imports in a circle,
no module reaches for another module's underscore names, modules stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

import djredis

PACKAGE = Path(djredis.__file__).parent
# A module holds one idea; this cap only catches one that has grown two. It was 500, which
# split ideas in the wrong places (a module importing another's private names is the sign):
# no module imports another's underscore names now (below), so the cap can follow the idea.
MAX_LINES = 600


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


def _source(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Return the module a ``from ... import`` statement in ``module`` reads from."""
    if not node.level:
        return node.module or ""
    here = module.split(".") if is_package else module.split(".")[:-1]
    base = here[: len(here) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _package_imports(root: Path) -> list[tuple[str, str]]:
    """Return (importer, package) for each ``from package import submodule`` in the package
    at ``root``. grimp records the submodule only, but the statement reads the package's
    namespace: its ``__init__`` runs first, and a package whose ``__init__`` imports the
    importer makes a circle that grimp does not show."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(root, path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                source = _source(module, path.name == "__init__.py", node)
                parts = source.split(".")
                if parts[0] == root.name and root.parent.joinpath(*parts).is_dir():
                    found.append((module, source))
    return found


def test_no_module_imports_its_package_through_a_circle() -> None:
    with_packages = grimp.build_graph("djredis", cache_dir=None)  # its own: edges are added
    for importer, package in _package_imports(PACKAGE):
        with_packages.add_import(importer=importer, imported=package)
    assert _cycle(with_packages) is None


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
def test_module_is_at_most_max_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines"


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _underscore_imports(root: Path) -> list[str]:
    """Return each place a module of the package at ``root`` takes another module's
    underscore name: ``from pkg.mod import _name``, or ``mod._name`` on an imported module."""
    package = root.name
    paths = {_module_name(root, path): path for path in root.rglob("*.py")}
    found = []
    for module, path in sorted(paths.items()):
        tree = ast.parse(path.read_text(), str(path))
        modules: dict[str, str] = {}  # local name -> the package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == package:
                        local = alias.asname or alias.name.split(".")[0]
                        modules[local] = alias.name if alias.asname else package
            elif isinstance(node, ast.ImportFrom):
                source = _source(module, path.name == "__init__.py", node)
                if source.split(".")[0] != package:
                    continue
                for alias in node.names:
                    if f"{source}.{alias.name}" in paths:  # a submodule
                        modules[alias.asname or alias.name] = f"{source}.{alias.name}"
                    elif _is_private(alias.name) and source != module:
                        found.append(f"{module}:{node.lineno} from {source} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                chain, value = [], node.value
                while isinstance(value, ast.Attribute):
                    chain.insert(0, value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id in modules:
                    owner = ".".join([modules[value.id], *chain])
                    if owner in paths and owner != module:
                        found.append(f"{module}:{node.lineno} {owner}.{node.attr}")
    return found


def test_no_module_imports_another_modules_underscore_names() -> None:
    # An underscore name is its module's own business: a name two modules share is public
    # in the one that owns it (docs/architecture.md).
    assert _underscore_imports(PACKAGE) == []


def test_the_underscore_finder_sees_each_way_in(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text("_SECRET = 1\ndef _helper(): ...\nPUBLIC = _SECRET\n")
    (root / "b.py").write_text("from pkg.sub.a import _SECRET, PUBLIC\n")
    (root / "c.py").write_text("from pkg.sub import a\nx = a._helper\n")
    (root / "sub" / "d.py").write_text("from .a import _helper\n")
    (root / "e.py").write_text("import pkg.sub.a\ny = pkg.sub.a._SECRET\n")
    assert _underscore_imports(root) == [
        "pkg.b:1 from pkg.sub.a import _SECRET",
        "pkg.c:2 pkg.sub.a._helper",
        "pkg.e:2 pkg.sub.a._SECRET",
        "pkg.sub.d:1 from pkg.sub.a import _helper",
    ]


def test_the_package_import_finder_sees_absolute_and_relative_ones(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from pkg.sub.a import A\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text("from pkg.sub import b\nfrom . import c\nA = 1\n")
    (root / "sub" / "b.py").write_text("from .. import sub\nfrom .c import C\n")
    (root / "sub" / "c.py").write_text("C = 1\n")
    assert _package_imports(root) == [  # pkg's import names a module, not a package
        ("pkg.sub.a", "pkg.sub"),
        ("pkg.sub.a", "pkg.sub"),
        ("pkg.sub.b", "pkg"),
    ]
