"""``ordercore sync``, ``import``, ``runs`` and ``replay`` on SQLite, in-process and as processes.

Channels come from a TOML config whose ``factory`` points at the test-only FakeChannel
factory in tests/support/fake_channels.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from ordercore.cli import main

FACTORY = "support.fake_channels:make"
TESTS = Path(__file__).resolve().parents[1]
POS = (
    "order_no,store,created_at,sku,qty,unit_price\n"
    "A1,main,2026-11-10 09:00,SKU-1,2,10.00\n"
    "A2,main,2026-11-10 10:00,SKU-1,1,10.00\n"
    "B1,main,2026-11-10 11:00,SKU-1,zero,10.00\n"
)


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


def _one_json_object(stdout: str) -> dict[str, object]:
    assert stdout.count("\n") == 1, stdout
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'shop.db').as_posix()}"


def _config(tmp_path: Path, **extra: str) -> Path:
    lines = ["[channels.shop]", f'factory = "{FACTORY}"', "orders = 5"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    lines += ["[channels.gone]", f'factory = "{FACTORY}"', "expired = true"]
    path = tmp_path / "ordercore.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("ordercore")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ordercore.cli"]
    env = os.environ | {"PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_sync_json_prints_one_run_and_exits_0(tmp_path: Path) -> None:
    """sync --json stores the channel's orders and prints its ledger entry as one object."""
    config = _config(tmp_path)
    result = _invoke(
        "sync", "--db", _url(tmp_path), "--channel", "shop", "--config", str(config), "--json"
    )
    assert result.exit_code == 0, result.output
    run = _one_json_object(result.stdout)
    assert (run["status"], run["created"], run["fetched"], run["trigger"]) == (
        "succeeded",
        5,
        5,
        "poll",
    )
    assert run["cursor_before"] is None
    assert run["cursor_after"] is not None


def test_sync_text_summary_names_counts_and_cursor_not_the_url(tmp_path: Path) -> None:
    """The text summary shows status, counts and cursor, and only the URL's scheme."""
    config = _config(tmp_path)
    url = _url(tmp_path)
    result = _invoke("sync", "--db", url, "--channel", "shop", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "poll shop on sqlite: succeeded" in result.stdout
    assert "created 5, updated 0" in result.stdout
    assert "cursor - ->" in result.stdout
    assert url not in result.output


def test_sync_with_expired_credentials_exits_3_and_is_in_the_ledger(tmp_path: Path) -> None:
    """A paused channel exits 3; `runs` then shows the paused run."""
    config, url = _config(tmp_path), _url(tmp_path)
    result = _invoke("sync", "--db", url, "--channel", "gone", "--config", str(config), "--json")
    assert result.exit_code == 3, result.output
    assert _one_json_object(result.stdout)["status"] == "paused"
    listed = _invoke("runs", "--db", url, "--json")
    runs = _one_json_object(listed.stdout)["runs"]
    assert isinstance(runs, list)
    assert [r["status"] for r in runs] == ["paused"]


def test_sync_missing_secret_exits_2_naming_the_variable(tmp_path: Path) -> None:
    """An unset ${VAR} in the config is bad input: exit 2, the variable named."""
    config = _config(tmp_path, secret='"${SHOP_SECRET_UNSET}"')
    result = _invoke("sync", "--db", _url(tmp_path), "--channel", "shop", "--config", str(config))
    assert result.exit_code == 2
    assert "SHOP_SECRET_UNSET" in result.output


def test_sync_unknown_channel_exits_2(tmp_path: Path) -> None:
    """A channel the config does not name is bad input (exit 2) listing the configured ones."""
    config = _config(tmp_path)
    result = _invoke("sync", "--db", _url(tmp_path), "--channel", "nope", "--config", str(config))
    assert result.exit_code == 2
    assert "gone, shop" in result.output


def test_import_json_then_again_is_already_imported(tmp_path: Path) -> None:
    """import --json reports counts and rejects; the same file again is already_imported."""
    file = tmp_path / "day1.csv"
    file.write_text(POS, encoding="utf-8")
    out = tmp_path / "rejects.csv"
    url = _url(tmp_path)
    args = ("import", str(file), "--db", url, "--channel", "pos", "--json")
    first = _invoke(*args, "--rejects-out", str(out))
    assert first.exit_code == 0, first.output
    report = _one_json_object(first.stdout)
    assert (report["created"], report["rejected_orders"]) == (2, 1)
    [reject] = report["rejects"]  # type: ignore[misc]
    assert {k: reject[k] for k in ("line", "order_no", "column", "value")} == {
        "line": 4,
        "order_no": "B1",
        "column": "qty",
        "value": "zero",
    }
    assert "quantity" in reject["message"]
    assert out.read_text(encoding="utf-8").startswith("\ufeffline,order_no,column,value,message")
    again = _one_json_object(_invoke(*args).stdout)
    assert again["already_imported"] is True
    assert again["created"] == 0


def test_import_text_summary_lists_rejects_by_line(tmp_path: Path) -> None:
    """The text summary shows the counts and each rejected row with its line."""
    file = tmp_path / "day1.csv"
    file.write_text(POS, encoding="utf-8")
    result = _invoke("import", str(file), "--db", _url(tmp_path))
    assert result.exit_code == 0, result.output
    assert "orders 2" in result.stdout
    assert "created 2" in result.stdout
    assert "line 4 order B1 qty 'zero'" in result.stdout


def test_import_wholly_bad_file_exits_2_and_stores_nothing(tmp_path: Path) -> None:
    """A file with no usable header exits 2; the ledger stays empty."""
    file = tmp_path / "junk.csv"
    file.write_text("foo,bar\n1,2\n", encoding="utf-8")
    url = _url(tmp_path)
    result = _invoke("import", str(file), "--db", url)
    assert result.exit_code == 2
    assert "header" in result.output
    assert _one_json_object(_invoke("runs", "--db", url, "--json").stdout) == {"runs": []}


def test_replay_window_and_rejects(tmp_path: Path) -> None:
    """replay --window stores through the normal path; --rejects reports what it resolved."""
    config, url = _config(tmp_path), _url(tmp_path)
    now = datetime.now(UTC)
    window = (
        (now - timedelta(hours=2)).isoformat(timespec="seconds"),
        now.isoformat(timespec="seconds"),
    )
    result = _invoke(
        "replay", "--db", url, "--channel", "shop", "--config", str(config),
        "--window", *window, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = _one_json_object(result.stdout)
    assert (run["trigger"], run["created"]) == ("replay", 5)
    rejects = _invoke(
        "replay", "--db", url, "--channel", "shop", "--config", str(config), "--rejects", "--json"
    )
    assert _one_json_object(rejects.stdout)["resolved"] == []
    both = _invoke("replay", "--db", url, "--channel", "shop", "--config", str(config))
    assert both.exit_code == 2


def test_sync_and_import_as_real_processes(tmp_path: Path) -> None:
    """The installed command syncs (config from ./ordercore.toml) and imports in a subprocess."""
    _config(tmp_path)
    url = _url(tmp_path)
    synced = _process("sync", "--db", url, "--channel", "shop", "--json", cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert _one_json_object(synced.stdout)["created"] == 5
    file = tmp_path / "day1.csv"
    file.write_text(POS, encoding="utf-8")
    imported = _process("import", str(file), "--db", url, "--channel", "pos", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "created 2" in imported.stdout
    assert url not in imported.stdout + imported.stderr
    listed = _process("runs", "--db", url, cwd=tmp_path)
    assert listed.returncode == 0
    assert "import" in listed.stdout
    assert "poll" in listed.stdout


def test_sync_reads_config_from_env_and_never_prints_the_secret(tmp_path: Path) -> None:
    """$ORDERCORE_CONFIG names the file; the resolved ${VAR} secret appears in no output."""
    config = _config(tmp_path, secret='"${SHOP_SECRET}"')
    env = {"ORDERCORE_CONFIG": str(config), "SHOP_SECRET": "s3cr3t-value-42"}
    for extra in ((), ("--json",)):
        result = _invoke("sync", "--db", _url(tmp_path), "--channel", "shop", *extra, env=env)
        assert result.exit_code == 0, result.output
        assert "s3cr3t-value-42" not in result.output


def test_corrected_file_on_sqlite_updates_only_the_changed_order(tmp_path: Path) -> None:
    """On SQLite a corrected file updates the changed order; the stored one is UNCHANGED."""
    url = _url(tmp_path)
    first, fixed = tmp_path / "day1.csv", tmp_path / "day1-fixed.csv"
    first.write_text(POS, encoding="utf-8")
    fixed.write_text(
        POS.replace("A2,main,2026-11-10 10:00,SKU-1,1", "A2,main,2026-11-10 10:00,SKU-1,3")
    )
    _invoke("import", str(first), "--db", url)
    report = _one_json_object(_invoke("import", str(fixed), "--db", url, "--json").stdout)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 1)
