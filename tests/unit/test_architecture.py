"""The import direction of the layers (docs/architecture.md), checked on the source's AST."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "graphpost"
EDGES = {"api", "identity", "smtp", "delivery", "web", "cli"}
STDLIB = set(sys.stdlib_module_names)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_domain_is_pure() -> None:
    for path in files("domain"):
        for name in imports_of(path):
            top = name.split(".")[0]
            allowed = (
                top in STDLIB
                or top == "msgspec"
                or name.startswith(("graphpost.domain", "graphpost.errors", "graphpost.types"))
            )
            assert allowed, f"{path.name} imports {name}"


def test_services_use_no_frameworks() -> None:
    banned = ("starlette", "sqlalchemy", "asyncpg", "uvicorn", "aiosmtpd", "sqlite3")
    for path in files("services"):
        for name in imports_of(path):
            assert not name.startswith(banned), f"{path.name} imports {name}"
            assert not any(name.startswith(f"graphpost.{edge}") for edge in EDGES), name


def test_edges_do_not_import_each_other() -> None:
    for edge in EDGES:
        if not (ROOT / edge).exists():
            continue
        others = EDGES - {edge} - ({"api", "identity", "web"} if edge == "cli" else set())
        for path in files(edge):
            for name in imports_of(path):
                for other in others:
                    assert not name.startswith(f"graphpost.{other}"), f"{path} imports {name}"


def test_store_does_not_reach_up() -> None:
    for path in files("store"):
        for name in imports_of(path):
            assert not name.startswith(("graphpost.services", "graphpost.api")), name


def test_nothing_built_at_import() -> None:
    """No module-level engine, settings or app: runtime builds them."""
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = ast.unparse(node.value.func)
                assert not func.endswith(("Settings", "open_engine", "GraphApp", "Runtime")), (
                    f"{path}: {ast.unparse(node)}"
                )
