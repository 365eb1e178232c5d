"""The layering, checked on the source's AST.

    cli ──► runtime ──► api, web, smtp, delivery, identity (the edges)
                 │            │
                 │            ▼
                 │        services ──► ports ──► domain
                 ▼                        ▲
               store ─────────────────────┘  (implements the ports)

Only ``runtime`` (and ``cli``, for the migration entry point) knows ``store``; only ``cli``
knows ``runtime``. Edges talk to services and ports; services to ports and the domain.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "graphpost"
EDGES = {"api", "identity", "smtp", "delivery", "web", "cli", "emulator"}
STDLIB = set(sys.stdlib_module_names)
FRAMEWORKS = ("starlette", "sqlalchemy", "alembic", "asyncpg", "uvicorn", "aiosmtpd", "sqlite3")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
    return found


def files(package: str) -> list[Path]:
    target = ROOT / package
    return [target.with_suffix(".py")] if not target.is_dir() else sorted(target.rglob("*.py"))


def within(name: str, *packages: str) -> bool:
    return any(name == f"graphpost.{p}" or name.startswith(f"graphpost.{p}.") for p in packages)


def offences(package: str, banned: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files(package)
        for name in imports_of(path)
        if within(name, *banned)
    ]


def test_every_package_is_placed() -> None:
    """A new top-level package must be placed in these rules before it is used."""
    placed = EDGES | {"domain", "ports", "services", "store", "auth", "testing"}
    modules = {"runtime", "settings", "errors", "types", "asgi", "__init__", "__main__"}
    for path in ROOT.iterdir():
        if path.name.startswith((".", "_")) and path.name != "__init__.py":
            continue
        name = path.stem if path.suffix == ".py" else path.name
        if path.is_dir() or path.suffix == ".py":
            assert name in placed | modules, f"{name}: place it in test_architecture.py"


def test_domain_is_pure() -> None:
    for path in files("domain"):
        for name in imports_of(path):
            top = name.split(".")[0]
            allowed = top in STDLIB or top == "msgspec" or within(name, "domain", "errors", "types")
            assert allowed, f"{path.name} imports {name}"


def test_ports_know_only_the_domain() -> None:
    for path in files("ports"):
        for name in imports_of(path):
            top = name.split(".")[0]
            allowed = (
                top in STDLIB
                or top == "msgspec"
                or within(name, "ports", "domain", "errors", "types")
            )
            assert allowed, f"{path.name} imports {name}"


def test_services_speak_ports_not_store() -> None:
    for path in files("services"):
        for name in imports_of(path):
            assert not name.startswith(FRAMEWORKS), f"{path.name} imports {name}"
    assert offences("services", (*EDGES, "store", "runtime")) == []


def test_edges_never_touch_the_store() -> None:
    for edge in ("api", "web", "smtp", "delivery", "identity", "emulator"):
        assert offences(edge, ("store", "runtime")) == []


def test_cli_knows_only_the_migration_entry_point_of_the_store() -> None:
    for path in files("cli"):
        for name in imports_of(path):
            if within(name, "store"):
                assert within(name, "store.migrate"), f"{path.name} imports {name}"


def test_only_runtime_and_cli_import_runtime() -> None:
    """(and ``testing``, which starts a server in-process as ``cli`` does)"""
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("cli", "runtime.py", "testing"):
            continue
        for name in imports_of(path):
            assert not within(name, "runtime"), f"{rel} imports {name}"


def test_edges_do_not_import_each_other() -> None:
    for edge in EDGES:
        others = EDGES - {edge} - ({"api", "identity", "web"} if edge == "cli" else set())
        assert offences(edge, tuple(others)) == [] or edge == "emulator"
    # the test controls answer in Graph's error envelope: of the api, only its error mapping
    for path in files("emulator"):
        for name in imports_of(path):
            if within(name, *(EDGES - {"emulator"})):
                assert within(name, "api.errors"), f"{path.name} imports {name}"


def test_testing_drives_like_the_cli() -> None:
    """graphpost.testing starts a server as `graphpost serve` does (runtime, cli) or talks
    HTTP to one; nothing else imports it, and it imports no store or pytest but in fixtures."""
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "testing":
            assert offences("testing", ("store",)) == []
            for name in imports_of(path):
                if name.split(".")[0] == "pytest":
                    assert rel.name == "fixtures.py", f"{rel} imports pytest"
            continue
        for name in imports_of(path):
            assert not within(name, "testing"), f"{rel} imports {name}"


def test_store_does_not_reach_up() -> None:
    assert offences("store", ("services", "runtime", *EDGES)) == []


def test_store_records_stay_in_the_store() -> None:
    """The values that cross the store's boundary are the ports' (and the domain's)."""
    for path in files("store"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                assert not node.name.endswith(("Row", "Record")), f"{path.name}: {node.name}"


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


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The checks above see imports of every form (a rule that sees nothing passes always)."""
    sample = tmp_path / "sample.py"
    sample.write_text("import graphpost.store.engine\nfrom graphpost.runtime import Runtime\n")
    assert {"graphpost.store.engine", "graphpost.runtime.Runtime"} <= imports_of(sample)
    assert within("graphpost.store.engine", "store") and not within("graphpost.storex", "store")
