"""Developer sessions: ``nox`` runs tests, lint, typecheck; ``-s bench`` and ``-s arch`` on demand.

``nox -s tests -- -k reserve`` passes everything after ``--`` to pytest.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHON = "3.11"
LINT_PATHS = ("src", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (the same command as the README and CI: ``pytest``)."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src (the configuration lives in pyproject.toml)."""
    session.install("-e", ".[dev]")
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (pytest-benchmark); see docs/performance.md for how to read them."""
    session.install("-e", ".[dev]")
    session.run("pytest", "benchmarks/", "--benchmark-only", *session.posargs)


@nox.session(python=PYTHON)
def arch(session: nox.Session) -> None:
    """The import-linter contracts of pyproject.toml (the dependency rule)."""
    session.install("-e", ".[dev]")
    session.run("lint-imports", "--no-cache", "--no-logo")
