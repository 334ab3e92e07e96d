"""Config reading for the push-capable channels: every problem named at once, no secret quoted."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from ordercore.errors import FieldError, InvalidInput

__all__ = ["ConfigReader"]


class ConfigReader:
    """Read typed values from a channel config; :meth:`done` raises InvalidInput if any failed."""

    def __init__(
        self,
        kind: str,
        name: str,
        config: Mapping[str, object],
        *,
        known: Collection[str],
        required: Collection[str],
        secret_keys: Collection[str],
    ) -> None:
        self.kind = kind
        self.name = name
        self._config = config
        self._secret_keys = frozenset(secret_keys)
        self.errors: list[FieldError] = []
        listed = ", ".join(sorted(known))
        for key in sorted(set(config) - set(known)):
            self.errors.append(FieldError(key, f"unknown key (known: {listed})"))
        for key in required:
            if config.get(key) in (None, "", [], ()):
                self.errors.append(FieldError(key, "is required"))

    def done(self) -> None:
        """Raise InvalidInput listing every problem found."""
        if self.errors:
            raise InvalidInput(f"{self.kind} channel {self.name!r} config", self.errors)

    def _shown(self, key: str) -> object:
        return "<secret>" if key in self._secret_keys else self._config.get(key)

    def text(self, key: str, default: str = "") -> str:
        """A text value (stripped)."""
        value = self._config.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.errors.append(FieldError(key, "must be text", self._shown(key)))
            return default
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        """One text or a list of texts (several secrets during a rotation)."""
        value = self._config.get(key)
        if value is None or value == "":
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(
            isinstance(item, str) and item for item in items
        ):
            self.errors.append(FieldError(key, "must be text or a list of texts", "<secret>"))
            return ()
        return tuple(str(item) for item in items)

    def time(self, key: str) -> datetime | None:
        """A timezone-aware time (datetime or ISO 8601 text), in UTC."""
        value = self._config.get(key)
        if value is None or value == "":
            return None
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            self.errors.append(FieldError(key, "must be a timezone-aware ISO 8601 time", value))
            return None
        return moment.astimezone(UTC)

    def number(
        self, key: str, default: float, low: float, high: float | None, *, whole: bool = False
    ) -> float:
        """A number within bounds."""
        value = self._config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.errors.append(FieldError(key, "must be a number", value))
            return default
        try:
            number = float(value)
        except ValueError:
            self.errors.append(FieldError(key, "must be a number", value))
            return default
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        if (
            not math.isfinite(number)
            or number < low
            or (high is not None and number > high)
            or (whole and number != int(number))
        ):
            kind = "a whole number" if whole else "a number"
            self.errors.append(FieldError(key, f"must be {kind} {bounds}", value))
            return default
        return number

    def url(self, key: str) -> str:
        """An http(s) URL without a trailing slash."""
        value = self.text(key)
        if value and not value.startswith(("http://", "https://")):
            self.errors.append(FieldError(key, "must be an http(s) URL", value))
        return value.rstrip("/")
