"""Rule configuration from TOML."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ordercore.domain.exceptions import RuleAction
from ordercore.domain.rules import load_rules_config, parse_rules_config
from ordercore.domain.severity import Severity
from ordercore.errors import InvalidInput


def test_toml_sets_thresholds_lists_and_overrides() -> None:
    """Sections set their fields; [rules."id"] tables override one rule each."""
    config = parse_rules_config(
        """
        [address]
        min_detail_length = 8
        [fraud]
        window = "PT30M"
        blacklist_phones = ["15999032871"]
        [payment]
        confirm_within = 600
        [rules."remark.risk"]
        severity = "high"
        actions = ["flag", "notify_supervisor"]
        [rules."fraud.abnormal_amount"]
        enabled = false
        """
    )
    assert config.address.min_detail_length == 8
    assert config.fraud.window == timedelta(minutes=30)
    assert config.payment.confirm_within == timedelta(minutes=10)
    assert "15999032871" in config.fraud.blacklist_phones
    assert config.rules["remark.risk"].severity is Severity.HIGH
    assert config.rules["remark.risk"].actions == {RuleAction.FLAG, RuleAction.NOTIFY_SUPERVISOR}
    assert not config.rules["fraud.abnormal_amount"].enabled


def test_a_bad_value_names_its_field() -> None:
    """An invalid value raises InvalidInput naming the dotted field and the value."""
    with pytest.raises(InvalidInput, match=r"fraud\.max_orders_per_phone.*got 0"):
        parse_rules_config("[fraud]\nmax_orders_per_phone = 0\n")


def test_an_unknown_setting_is_refused() -> None:
    """A misspelt key is an error rather than silently ignored."""
    with pytest.raises(InvalidInput, match=r"address\.min_detail_lenght"):
        parse_rules_config("[address]\nmin_detail_lenght = 3\n")


def test_broken_toml_is_an_invalid_input() -> None:
    """Unparseable TOML raises InvalidInput, not tomllib's error."""
    with pytest.raises(InvalidInput, match="toml"):
        parse_rules_config("[address\n")


def test_a_file_is_read_as_utf8(tmp_path: Path) -> None:
    """load_rules_config reads Chinese word lists from a file."""
    path = tmp_path / "rules.toml"
    path.write_text('[remark]\nrisk_words = ["坑人"]\n', encoding="utf-8")
    assert load_rules_config(path).remark.risk_words == ("坑人",)
