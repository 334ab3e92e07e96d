"""The flash-sale must-shows: 10,000 buyers on 1,000 units, per request and coalesced,
in one process and in 4 OS processes sharing one database.

Runs through the library's ``run_flash_sale`` (what ``ordercore loadtest`` runs), plus
one ``ordercore loadtest --processes 2`` subprocess on SQLite. PostgreSQL tests get a
fresh database each (``postgres_url`` in conftest.py) or skip with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ordercore.loadtest import CoalesceMode, FlashSaleConfig, FlashSaleReport, run_flash_sale

BUYERS = 10_000
STOCK = 1_000


async def _flash_sale(url: str, *, coalesce: CoalesceMode, processes: int) -> FlashSaleReport:
    return await run_flash_sale(
        FlashSaleConfig(url, buyers=BUYERS, stock=STOCK, coalesce=coalesce, processes=processes)
    )


def _assert_exact(report: FlashSaleReport) -> None:
    """Exactly the stock sold, everyone else turned away, nothing over, no drift."""
    assert report.errors == 0, report.error_samples
    assert (report.successes, report.rejected) == (STOCK, BUYERS - STOCK)
    assert (report.oversold, report.reserved, report.final_sellable) == (0, STOCK, 0)
    assert report.drift == ()
    assert report.exact
    assert report.passed


@pytest.mark.anyio
@pytest.mark.postgres
@pytest.mark.slow
async def test_four_processes_per_request_on_postgresql(postgres_url: str) -> None:
    """4 OS processes, one transaction per buyer, on PostgreSQL: 1,000 sold, 9,000 refused."""
    report = await _flash_sale(postgres_url, coalesce="off", processes=4)

    _assert_exact(report)
    assert (report.processes, report.coalesced, report.concurrency) == (4, False, BUYERS)
    assert len(report.process_successes) == 4
    assert sum(report.process_successes) == STOCK


@pytest.mark.anyio
@pytest.mark.postgres
async def test_four_processes_coalesced_on_postgresql(postgres_url: str) -> None:
    """4 OS processes, each grouping its buyers, on PostgreSQL: batches never oversell."""
    report = await _flash_sale(postgres_url, coalesce="on", processes=4)

    _assert_exact(report)
    assert (report.processes, report.coalesced) == (4, True)
    assert len(report.process_successes) == 4
    assert sum(report.process_successes) == STOCK


@pytest.mark.anyio
@pytest.mark.postgres
async def test_one_process_coalesced_on_postgresql(postgres_url: str) -> None:
    """One process with the coalescer on PostgreSQL sells exactly the 1,000 units."""
    report = await _flash_sale(postgres_url, coalesce="on", processes=1)

    _assert_exact(report)
    assert (report.processes, report.coalesced) == (1, True)


@pytest.mark.anyio
async def test_one_process_coalesced_on_sqlite(sqlite_url: str) -> None:
    """One process with the coalescer on a SQLite file sells exactly the 1,000 units."""
    report = await _flash_sale(sqlite_url, coalesce="on", processes=1)

    _assert_exact(report)
    assert (report.processes, report.coalesced) == (1, True)


def test_cli_two_processes_coalesced_on_sqlite(sqlite_url: str) -> None:
    """`ordercore loadtest --processes 2 --coalesce --json` on one SQLite file is exact."""
    script = Path(sys.executable).with_name("ordercore")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ordercore.cli"]
    completed = subprocess.run(
        [
            *command,
            "loadtest",
            "--db",
            sqlite_url,
            "--buyers",
            "4000",
            "--stock",
            "500",
            "--processes",
            "2",
            "--coalesce",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("\n") == 1, completed.stdout
    report = json.loads(completed.stdout)
    assert (report["processes"], report["coalesce"], report["coalesced"]) == (2, "on", True)
    assert len(report["process_successes"]) == 2
    assert (report["successes"], report["rejected"], report["oversold"]) == (500, 3_500, 0)
    assert (report["drift"], report["exact"], report["errors"]) == ([], True, 0)
