"""Shared test helpers live in helper modules (conftest.py, tests/sink.py, tests/mail_api.py, …):
no module under tests/ imports a test module (``test_*.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def is_test_module(dotted: str) -> bool:
    return dotted.rsplit(".", 1)[-1].startswith("test_")


def imported_test_modules(path: Path) -> list[str]:
    """The test modules that ``path`` imports, at any depth of its code."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if is_test_module(module):
                found.append(module)
            else:  # from tests.e2e import test_sending
                found += [f"{module}.{a.name}" for a in node.names if is_test_module(a.name)]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS.parent)): names
        for path in sorted(TESTS.rglob("*.py"))
        if (names := imported_test_modules(path))
    }
    assert offenders == {}, "move shared helpers into a helper module under tests/"


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import tests.e2e.test_a\n"
        "from tests.e2e.test_b import helper\n"
        "from tests.e2e import test_c\n"
        "from .test_d import x\n"
        "def f():\n"
        "    from tests.unit.test_e import y\n"
        "from tests.sink import Sink\n"
        "from tests.e2e import helpers\n"
    )
    assert imported_test_modules(sample) == [
        "tests.e2e.test_a",
        "tests.e2e.test_b",
        "tests.e2e.test_c",
        ".test_d",
        "tests.unit.test_e",
    ]
