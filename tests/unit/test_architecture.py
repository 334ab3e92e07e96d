"""The dependency rule: the core never imports adapters or infrastructure libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "ordercore"

FORBIDDEN_IN_CORE = frozenset(
    {"sqlalchemy", "httpx", "alembic", "psycopg", "pybreaker", "ordercore_adapters"}
)


def _lint_imports() -> list[str]:
    """The command that runs import-linter from the interpreter running the tests."""
    script = Path(sys.executable).with_name("lint-imports")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def _imported_top_levels(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in a module, TYPE_CHECKING too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_import_linter_contracts_hold() -> None:
    """Every import-linter contract in pyproject.toml is kept (lint-imports exits 0)."""
    result = subprocess.run(
        [*_lint_imports(), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"lint-imports failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    )


def test_core_modules_import_no_infrastructure() -> None:
    """No module of src/ordercore imports an infrastructure library or ordercore_adapters."""
    modules = sorted(CORE.rglob("*.py"))
    assert CORE / "core.py" in modules, f"found no core modules under {CORE}"
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {package}"
        for path in modules
        for line, package in _imported_top_levels(ast.parse(path.read_text(), str(path)))
        if package in FORBIDDEN_IN_CORE
    ]
    assert not violations, (
        "the core must not depend on infrastructure or adapters (DESIGN.md, STYLE.md rule 1); "
        "move this code to ordercore_adapters or behind a port:\n  " + "\n  ".join(violations)
    )
