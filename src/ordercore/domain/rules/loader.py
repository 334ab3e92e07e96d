"""Load rule configuration from TOML (standard library ``tomllib``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from ordercore.domain.rules.config import RulesConfig
from ordercore.errors import FieldError, InvalidInput

__all__ = ["load_rules_config", "parse_rules_config"]


def parse_rules_config(text: str) -> RulesConfig:
    """Parse TOML text into a RulesConfig; InvalidInput names each bad field.

    ::

        [address]
        min_detail_length = 8

        [fraud]
        window = "PT30M"            # ISO 8601 duration, or seconds
        blacklist_phones = ["13912340000"]

        [rules."remark.risk"]
        severity = "high"

        [rules."fraud.abnormal_amount"]
        enabled = false
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("rules config", [FieldError("toml", str(exc), None)]) from None
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "rules config",
            [
                FieldError(
                    ".".join(str(part) for part in error["loc"]) or "config",
                    error["msg"],
                    error.get("input"),
                )
                for error in exc.errors()
            ],
        ) from None


def load_rules_config(path: str | Path) -> RulesConfig:
    """Read a TOML file into a RulesConfig (see :func:`parse_rules_config`)."""
    return parse_rules_config(Path(path).read_text(encoding="utf-8"))
