"""``ordercore after-sales sync``, ``list`` and ``inspect`` on SQLite, in-process."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from ordercore.cli import main

FACTORY = "support.fake_after_sales_channels:make"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'shop.db').as_posix()}"


def _config(tmp_path: Path) -> str:
    path = tmp_path / "ordercore.toml"
    path.write_text(
        "\n".join(
            [
                "[channels.shop]",
                f'factory = "{FACTORY}"',
                "requests = 3",
                "[channels.gone]",
                f'factory = "{FACTORY}"',
                "expired = true",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return str(path)


def _sync(tmp_path: Path, channel: str = "shop") -> Result:
    return _invoke(
        "after-sales", "sync", "--db", _url(tmp_path), "--channel", channel,
        "--config", _config(tmp_path), "--json",
    )  # fmt: skip


def test_sync_prints_one_json_ledger_entry_and_stores_the_requests(tmp_path: Path) -> None:
    """A sync exits 0 with the run as JSON; list shows the three requests, unlinked."""
    result = _sync(tmp_path)
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["feed"], run["status"], run["created"]) == ("after_sales", "succeeded", 3)
    listed = _invoke("after-sales", "list", "--db", _url(tmp_path), "--unlinked", "--json")
    ids = sorted(item["external_id"] for item in json.loads(listed.stdout)["after_sales"])
    assert ids == ["R0", "R1", "R2"]


def test_a_paused_sync_exits_3(tmp_path: Path) -> None:
    """Expired credentials record a paused run and exit 3."""
    result = _sync(tmp_path, "gone")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["status"] == "paused"


def test_inspect_restocks_once_and_says_so_again(tmp_path: Path) -> None:
    """inspect grades and restocks; the same call again reports that nothing changed."""
    _sync(tmp_path)
    args = (
        "after-sales", "inspect", "shop:R0", "--db", _url(tmp_path), "--by", "li",
        "--line", "SKU-1:sellable=1,defective=1",
    )  # fmt: skip
    first = _invoke(*args, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["created"] is True
    again = _invoke(*args)
    assert again.exit_code == 0
    assert "already inspected" in again.stdout


def test_bad_inspection_input_exits_2(tmp_path: Path) -> None:
    """A malformed --line, an unknown request and too many units each exit 2."""
    _sync(tmp_path)
    url = _url(tmp_path)
    malformed = _invoke("after-sales", "inspect", "shop:R0", "--db", url, "--by", "li",
                        "--line", "SKU-1:shiny=1")  # fmt: skip
    unknown = _invoke("after-sales", "inspect", "shop:R9", "--db", url, "--by", "li",
                      "--line", "SKU-1:sellable=1")  # fmt: skip
    too_many = _invoke("after-sales", "inspect", "shop:R0", "--db", url, "--by", "li",
                       "--line", "SKU-1:sellable=3")  # fmt: skip
    assert (malformed.exit_code, unknown.exit_code, too_many.exit_code) == (2, 2, 2)
    assert "shop:R9" in unknown.output
    assert "more units" in too_many.output
