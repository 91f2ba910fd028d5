"""Every test can fail: each test function asserts, expects an exception or a warning, or
calls a helper of the test suite that does.

A test that only runs code proves that the code does not raise, and nothing of what its
name promises. Helpers are followed through plain calls (``helper(...)``,
``module.helper(...)``) to functions of the same module or imported from ``tests``; a test
that asserts some other way stands in ``ASSERTS_OTHERWISE`` with the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

# "path::function" -> how the test fails without an assert statement of its own.
ASSERTS_OTHERWISE = {
    "tests/unit/test_resp.py::test_readers_raise_nothing_but_protocol_error": (
        "any exception but the suppressed ProtocolError fails it"
    ),
    "tests/contract/channels/test_docs_chat.py::test_the_pages_own_tests_pass": (
        "runs the tests written on docs/channels.md, which assert"
    ),
}
# Calls that are an assertion: pytest.raises/warns/fail, Playwright's expect(...),
# unittest's self.assert*/self.fail.
ASSERTING_CALLS = frozenset({"raises", "warns", "deprecated_call", "fail", "expect"})


@dataclass
class Module:
    path: Path
    tree: ast.Module
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, attr)
    modules: dict[str, str] = field(default_factory=dict)  # alias -> module


def _dotted(path: Path, base: Path) -> str:
    return ".".join(path.relative_to(base).with_suffix("").parts).removesuffix(".__init__")


def _imported_from(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _load(path: Path, base: Path) -> Module:
    module = Module(path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    dotted = _dotted(path, base)
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            module.functions[node.name] = node
        elif isinstance(node, ast.ImportFrom):
            source = _imported_from(dotted, path, node)
            for alias in node.names:
                name = alias.asname or alias.name
                module.names[name] = (source, alias.name)
                module.modules[name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module.modules[alias.asname or alias.name] = alias.name
    return module


class Suite:
    """The test suite's modules, parsed once, and which of their functions assert."""

    def __init__(self, root: Path) -> None:
        self.base = root.parent
        self.modules = {
            _dotted(path, self.base): _load(path, self.base) for path in sorted(root.rglob("*.py"))
        }
        self._asserts: dict[tuple[str, str], bool] = {}

    def _resolve(self, module: Module, call: ast.Call) -> tuple[str, str] | None:
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in module.functions:
                return _dotted(module.path, self.base), func.id
            return module.names.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            target = module.modules.get(func.value.id)
            return (target, func.attr) if target else None
        return None

    def asserts(self, dotted: str, name: str) -> bool:
        """Whether function ``name`` of module ``dotted`` asserts, itself or in a helper."""
        key = (dotted, name)
        if key not in self._asserts:
            self._asserts[key] = False  # a recursive helper asserts only if some path does
            module = self.modules.get(dotted)
            function = module.functions.get(name) if module else None
            self._asserts[key] = bool(module and function and self._body_asserts(module, function))
        return self._asserts[key]

    def _body_asserts(self, module: Module, node: ast.AST) -> bool:
        for child in ast.walk(node):
            if isinstance(child, ast.Assert):
                return True
            if not isinstance(child, ast.Call):
                continue
            func = child.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ASSERTING_CALLS or called.startswith("assert"):
                return True
            target = self._resolve(module, child)
            if target and self.asserts(*target):
                return True
        return False

    def tests(self) -> Iterator[tuple[Module, ast.FunctionDef | ast.AsyncFunctionDef]]:
        """Every test function pytest collects: ``test*`` in ``test_*.py`` modules and
        their ``Test*`` classes."""
        for module in self.modules.values():
            if not module.path.name.startswith("test_"):
                continue
            for node in module.tree.body:
                members = node.body if isinstance(node, ast.ClassDef) else [node]
                if isinstance(node, ast.ClassDef) and not node.name.startswith("Test"):
                    continue
                for member in members:
                    if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                        member.name.startswith("test")
                    ):
                        yield module, member

    def silent_tests(self) -> list[str]:
        """``path::function`` of each test that asserts nothing."""
        return [
            f"{module.path.relative_to(self.base)}::{test.name}"
            for module, test in self.tests()
            if not self._body_asserts(module, test)
        ]


def test_every_test_asserts_something() -> None:
    silent = [name for name in Suite(TESTS).silent_tests() if name not in ASSERTS_OTHERWISE]
    assert silent == [], "these tests assert nothing that could fail:\n" + "\n".join(silent)


def test_every_test_that_asserts_otherwise_still_exists() -> None:
    suite = Suite(TESTS)
    tests = {f"{m.path.relative_to(suite.base)}::{t.name}" for m, t in suite.tests()}
    assert set(ASSERTS_OTHERWISE) <= tests, sorted(set(ASSERTS_OTHERWISE) - tests)


def test_the_finder_follows_helpers_and_flags_a_silent_test(tmp_path: Path) -> None:
    package = tmp_path / "tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helpers.py").write_text(
        "def check(x):\n    assert x\n\ndef run(x):\n    return x\n"
    )
    (package / "test_sample.py").write_text(
        "import pytest\n"
        "from ._helpers import check, run\n"
        "from . import _helpers\n\n"
        "def _local(x):\n    check(x)\n\n"
        "def test_direct():\n    assert 1\n\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n\n"
        "def test_imported_helper():\n    check(1)\n\n"
        "def test_module_helper():\n    _helpers.check(1)\n\n"
        "def test_local_helper():\n    _local(1)\n\n"
        "def test_silent():\n    run(1)\n\n"
        "class TestGroup:\n"
        "    def test_unittest_style(self):\n        self.assertEqual(1, 1)\n\n"
        "    def test_silent_method(self):\n        run(2)\n"
    )
    assert Suite(package).silent_tests() == [
        "tests/test_sample.py::test_silent",
        "tests/test_sample.py::test_silent_method",
    ]
