"""The ``ordercore`` command: loadtest, demo and migrate, in-process and as a real process.

The ``postgres_url`` fixture (a fresh database, or a skip saying why) is in conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ordercore.cli import main

REQUIRED_KEYS = {
    "buyers",
    "stock",
    "successes",
    "rejected",
    "oversold",
    "final_sellable",
    "reservations_per_s",
    "p50_ms",
    "p99_ms",
}


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _one_json_object(stdout: str) -> dict[str, object]:
    """Parse stdout as exactly one JSON object (json.loads rejects anything after it)."""
    assert stdout.endswith("\n"), stdout
    assert stdout.count("\n") == 1, stdout
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


def _ordercore_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m ordercore.cli``."""
    script = Path(sys.executable).with_name("ordercore")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ordercore.cli"]


def test_loadtest_json_prints_exactly_one_object(tmp_path: Path) -> None:
    """loadtest --json on SQLite prints one JSON object with every key: stock sold, none over."""
    url = _sqlite_url(tmp_path / "shop.db")
    result = _invoke("loadtest", "--db", url, "--buyers", "600", "--stock", "150", "--json")

    assert result.exit_code == 0, result.output
    report = _one_json_object(result.stdout)
    assert not REQUIRED_KEYS - report.keys()
    assert (report["successes"], report["rejected"], report["oversold"]) == (150, 450, 0)
    assert report["final_sellable"] == 0
    assert report["exact"] is True
    assert report["db"] == "sqlite"


def test_loadtest_as_a_real_process(tmp_path: Path) -> None:
    """The installed command, run as a subprocess, prints one JSON object on stdout and exits 0."""
    completed = subprocess.run(
        [
            *_ordercore_command(),
            "loadtest",
            "--db",
            _sqlite_url(tmp_path / "shop.db"),
            "--buyers",
            "400",
            "--stock",
            "100",
            "--concurrency",
            "32",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    report = _one_json_object(completed.stdout)
    assert not REQUIRED_KEYS - report.keys()
    assert report["successes"] == report["stock"] == 100
    assert report["oversold"] == 0
    assert report["concurrency"] == 32


def test_rerun_on_the_same_database_stays_exact(tmp_path: Path) -> None:
    """A second run on one database switches to a fresh SKU, says so, and is exact again."""
    url = _sqlite_url(tmp_path / "shop.db")
    first = _invoke("loadtest", "--db", url, "--buyers", "200", "--stock", "50", "--json")
    second = _invoke("loadtest", "--db", url, "--buyers", "200", "--stock", "50", "--json")

    assert (first.exit_code, second.exit_code) == (0, 0), second.output
    one, two = _one_json_object(first.stdout), _one_json_object(second.stdout)
    assert one["sku"] == "FLASH-1"
    assert two["sku"] == f"FLASH-1-{two['run_id']}"
    assert "already has stock" in second.stderr
    assert (two["successes"], two["oversold"], two["drift"], two["exact"]) == (50, 0, [], True)


def test_loadtest_without_json_prints_a_table(tmp_path: Path) -> None:
    """Without --json the report is a table ending in the verdict, and the exit code is 0."""
    result = _invoke(
        "loadtest", "--db", _sqlite_url(tmp_path / "shop.db"), "--buyers", "100", "--stock", "30"
    )

    assert result.exit_code == 0, result.output
    assert "successes" in result.stdout
    assert "oversold" in result.stdout
    assert "exact" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_loadtest_defaults_to_a_fresh_sqlite_file() -> None:
    """Without --db the run uses a fresh SQLite file and reports only the scheme."""
    result = _invoke("loadtest", "--buyers", "50", "--stock", "20", "--json")

    assert result.exit_code == 0, result.output
    report = _one_json_object(result.stdout)
    assert (report["db"], report["sku"], report["successes"]) == ("sqlite", "FLASH-1", 20)


@pytest.mark.slow
def test_demo_json_runs_the_flash_sale_on_sqlite() -> None:
    """demo --json sells exactly 1,000 units to 10,000 buyers on a fresh SQLite file."""
    result = _invoke("demo", "--json")

    assert result.exit_code == 0, result.output
    report = _one_json_object(result.stdout)
    assert (report["buyers"], report["stock"], report["successes"]) == (10_000, 1_000, 1_000)
    assert (report["rejected"], report["oversold"], report["db"]) == (9_000, 0, "sqlite")


def test_unknown_scheme_exits_2_listing_the_known_ones() -> None:
    """--db nosuch://x exits 2 with one clean line naming memory, sqlite and postgresql."""
    result = _invoke("loadtest", "--db", "nosuch://x", "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    for scheme in ("memory", "sqlite", "postgresql"):
        assert scheme in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["--buyers", "0"], ["--stock", "-1"], ["--concurrency", "0"], ["--buyers", "x"]]
)
def test_bad_numbers_are_usage_errors(args: list[str]) -> None:
    """Non-positive buyers, negative stock, zero concurrency or a non-number exit 2."""
    result = _invoke("loadtest", "--db", "memory://", *args)

    assert result.exit_code == 2
    assert result.stdout == ""


def test_coalescing_defaults_to_auto_and_is_used_on_sqlite(tmp_path: Path) -> None:
    """Without a flag the mode is "auto" and SQLite gets the coalescer; --json says so."""
    url = _sqlite_url(tmp_path / "shop.db")
    result = _invoke("loadtest", "--db", url, "--buyers", "300", "--stock", "60", "--json")

    assert result.exit_code == 0, result.output
    report = _one_json_object(result.stdout)
    assert (report["coalesce"], report["coalesced"], report["processes"]) == ("auto", True, 1)


@pytest.mark.parametrize(
    ("flags", "mode", "coalesced"),
    [(["--no-coalesce"], "off", False), (["--coalesce", "--batch-size", "25"], "on", True)],
)
def test_coalesce_flags_reach_the_core(
    tmp_path: Path, flags: list[str], mode: str, coalesced: bool
) -> None:
    """--no-coalesce reserves per request, --coalesce groups (with --batch-size); both exact."""
    url = _sqlite_url(tmp_path / "shop.db")
    result = _invoke("loadtest", "--db", url, "--buyers", "400", "--stock", "90", *flags, "--json")

    assert result.exit_code == 0, result.output
    report = _one_json_object(result.stdout)
    assert (report["coalesce"], report["coalesced"]) == (mode, coalesced)
    assert (report["successes"], report["oversold"], report["exact"]) == (90, 0, True)
    if coalesced:
        assert report["batch_size"] == 25


def test_processes_on_memory_exits_2_naming_processes() -> None:
    """--processes 2 with memory:// exits 2 with one line naming `processes`, nothing on stdout."""
    result = _invoke("loadtest", "--db", "memory://", "--processes", "2", "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "processes: must be 1 with the memory storage" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["--processes", "0"], ["--batch-size", "0"], ["--batch-size", "10001"]]
)
def test_bad_processes_or_batch_size_exit_2(args: list[str]) -> None:
    """Zero processes, a zero batch or one above 10,000 exit 2 without output on stdout."""
    result = _invoke("loadtest", "--db", "memory://", *args, "--json")

    assert result.exit_code == 2
    assert result.stdout == ""


def test_blank_sku_exits_2() -> None:
    """A blank --sku is rejected by the library's validation and exits 2 without a traceback."""
    result = _invoke("loadtest", "--db", "memory://", "--sku", " ")

    assert result.exit_code == 2
    assert "sku: must not be empty" in result.stderr


def test_unreachable_storage_never_prints_the_password() -> None:
    """A failing PostgreSQL URL exits non-zero, and its password appears nowhere."""
    url = "postgresql+psycopg://shop:s3cret-pw@127.0.0.1:1/shop"
    result = CliRunner().invoke(main, ["loadtest", "--db", url, "--json"])

    assert result.exit_code != 0
    assert result.stdout == ""
    assert "s3cret-pw" not in result.output
    assert "s3cret-pw" not in str(result.exception or "")


def test_migrate_reports_schema_up_to_date(tmp_path: Path) -> None:
    """migrate on a new SQLite file creates it and reports the scheme only."""
    path = tmp_path / "new.db"
    result = _invoke("migrate", "--db", _sqlite_url(path))

    assert result.exit_code == 0, result.output
    assert result.stdout == "sqlite: schema up to date\n"
    assert path.exists()


def test_migrate_unknown_scheme_exits_2() -> None:
    """migrate with an unknown scheme exits 2 and lists the known schemes."""
    result = _invoke("migrate", "--db", "nosuch://x")

    assert result.exit_code == 2
    assert "sqlite" in result.stderr


@pytest.mark.postgres
def test_loadtest_on_postgresql(postgres_url: str) -> None:
    """loadtest on PostgreSQL sells exactly the stock with no oversell or drift."""
    result = _invoke(
        "loadtest", "--db", postgres_url, "--buyers", "1000", "--stock", "200", "--json"
    )

    assert result.exit_code == 0, result.output
    report = _one_json_object(result.stdout)
    assert (report["successes"], report["oversold"], report["drift"]) == (200, 0, [])
    assert report["db"] == "postgresql+psycopg"


@pytest.mark.postgres
def test_migrate_on_postgresql(postgres_url: str) -> None:
    """migrate on a fresh PostgreSQL database reports the schema up to date."""
    result = _invoke("migrate", "--db", postgres_url)

    assert result.exit_code == 0, result.output
    assert result.stdout == "postgresql+psycopg: schema up to date\n"
