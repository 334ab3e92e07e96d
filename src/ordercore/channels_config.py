"""Channel configuration: a TOML file that names each shop and the adapter that serves it.

::

    # ordercore.toml
    [channels.taobao-flagship]
    kind = "taobao"                      # an ``ordercore.channels`` entry point
    app_key = "12345678"
    app_secret = "${TAOBAO_APP_SECRET}"  # resolved from the environment
    session = "${TAOBAO_SESSION}"
    session_expires_at = "2026-12-31T00:00:00+08:00"
    gateway_url = "https://eco.taobao.com/router/rest"

    [channels.own-store]
    factory = "my_shop.channels:make_channel"   # an adapter that is not installed as a package

Scheduling (``ordercore serve``) is configured in the same file: a ``[schedule]`` table of
defaults for every channel, a ``[channels.NAME.schedule]`` table per channel, ``[pos.NAME]``
tables for watched folders of POS exports, and an optional ``[notifier]``::

    [schedule]                           # defaults (these are the built-in ones)
    poll_every = "5m"                    # mainstream platforms
    safety_poll_every = "30m"            # webhook channels (mode = "webhook")
    reconcile_every = "1h"               # "off" turns reconciliation off
    reconcile_lookback = "2h"

    [channels.own-store.schedule]
    mode = "webhook"                     # default for the shopify and h5 kinds, else "poll"
    safety_poll_every = "15m"

    [pos.pos]                            # the channel name POS orders are stored under
    folder = "exports/pos"               # relative to the config file
    import_at = "02:00"                  # daily, in ``timezone`` (default UTC)
    timezone = "Asia/Shanghai"
    patterns = ["*.csv", "*.xlsx"]
    archive = "imported"                 # subfolder for imported files (false: leave them)

    [notifier]
    factory = "my_shop.alerts:make_notifier"   # (config) -> NotifierPort; or kind = NAME

Durations are ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``, combinations (``"1h30m"``), ISO 8601
(``"PT5M"``) or a number of seconds.

The file is ``--config PATH``, else ``$ORDERCORE_CONFIG``, else ``ordercore.toml`` in the
working directory. Every key but ``kind`` and ``factory`` goes to the adapter's factory
``(name, config) -> ChannelPort``. A string that is exactly ``"${NAME}"`` is read from the
environment variable NAME; a missing one raises :class:`MissingSecret`, which names the
variable and never a value.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from ordercore import registry
from ordercore.errors import FieldError, InvalidInput
from ordercore.ports.channels import ChannelPort
from ordercore.ports.notifiers import NotifierPort
from ordercore.services.scheduler import ChannelMode, ChannelPolicy, PosImportPolicy

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "WEBHOOK_KINDS",
    "ChannelConfigError",
    "MissingSecret",
    "ServeConfig",
    "config_path",
    "load_channel",
    "load_channels",
    "load_notifier",
    "load_serve_config",
    "parse_duration",
]

CONFIG_ENV = "ORDERCORE_CONFIG"
"""The environment variable that names the config file when ``--config`` is not given."""
DEFAULT_CONFIG = "ordercore.toml"
"""The config file looked for in the working directory."""

WEBHOOK_KINDS = frozenset({"shopify", "h5"})
"""Adapter kinds scheduled as webhook channels (a slow safety poll) unless ``mode`` says."""

_RESERVED = ("kind", "factory", "schedule")
_SCHEDULE_KEYS = frozenset(
    {"mode", "poll_every", "safety_poll_every", "reconcile_every", "reconcile_lookback"}
)
_POS_KEYS = frozenset({"folder", "import_at", "timezone", "patterns", "archive", "failed"})
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([dhms]))")
_UNITS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_ISO_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class ChannelConfigError(InvalidInput):
    """The channel configuration cannot be read or does not describe a usable channel."""

    def __init__(self, where: str, field: str, message: str, value: object = None) -> None:
        super().__init__(where, [FieldError(field, message, value)])


class MissingSecret(ChannelConfigError):
    """A ``${VAR}`` reference names an environment variable that is not set."""

    def __init__(self, channel: str, key: str, variable: str) -> None:
        self.variable = variable
        super().__init__(
            f"channel {channel!r}",
            key,
            f"environment variable {variable} is not set",
            f"${{{variable}}}",
        )


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to read: ``path``, else ``$ORDERCORE_CONFIG``, else ./ordercore.toml."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_channels(
    path: str | os.PathLike[str] | None = None,
    *,
    names: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, ChannelPort]:
    """Build the channels the config file describes (only ``names`` when given), by name."""
    file = config_path(path)
    tables = _read(file)
    wanted = list(tables) if names is None else list(names)
    unknown = [name for name in wanted if name not in tables]
    if unknown:
        known = ", ".join(sorted(tables)) or "none"
        raise ChannelConfigError(
            f"config {file.name!r}",
            "channels",
            f"no [channels.{unknown[0]}] table; configured channels: {known}",
            unknown[0],
        )
    env = os.environ if environ is None else environ
    return {name: _build(name, tables[name], env) for name in wanted}


def load_channel(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ChannelPort:
    """Build one configured channel (other channels' secrets need not be set)."""
    return load_channels(path, names=[name], environ=environ)[name]


def _read(file: Path) -> dict[str, dict[str, Any]]:
    return _tables(_read_document(file), file, "channels")


def _read_document(file: Path) -> dict[str, Any]:
    where = f"config {file.name!r}"
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChannelConfigError(
            where, "file", f"not found (pass --config or set {CONFIG_ENV})", str(file)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChannelConfigError(where, "file", f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChannelConfigError(where, "file", f"is not valid TOML: {exc}") from None


def _tables(data: Mapping[str, Any], file: Path, section: str) -> dict[str, dict[str, Any]]:
    where = f"config {file.name!r}"
    tables = data.get(section, {})
    if not isinstance(tables, dict):
        raise ChannelConfigError(where, section, f"must be a table of [{section}.NAME] tables")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ChannelConfigError(where, f"{section}.{name}", "must be a table")
    return tables


def _build(name: str, table: Mapping[str, Any], env: Mapping[str, str]) -> ChannelPort:
    where = f"channel {name!r}"
    kind = table.get("kind")
    factory_path = table.get("factory")
    config = {
        key: _resolve(value, name, key, env) for key, value in table.items() if key not in _RESERVED
    }
    if factory_path is not None:
        factory = _import_factory(where, factory_path)
    elif isinstance(kind, str) and kind:
        factory = registry.load("ordercore.channels", kind)
    else:
        raise ChannelConfigError(
            where, "kind", "set kind (an installed channel adapter) or factory", kind
        )
    channel = factory(name, config)
    if not isinstance(channel, ChannelPort):
        raise ChannelConfigError(
            where, "factory" if factory_path else "kind", "did not build a ChannelPort"
        )
    return channel


def _import_factory(where: str, target: object) -> Any:
    if not isinstance(target, str) or not _FACTORY.fullmatch(target):
        raise ChannelConfigError(where, "factory", "must be 'package.module:callable'", target)
    module_name, _, attribute = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ChannelConfigError(where, "factory", f"cannot be imported: {exc}", target) from None
    if not callable(obj):
        raise ChannelConfigError(where, "factory", "is not callable", target)
    return obj


def _resolve(value: Any, channel: str, key: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        match = _REFERENCE.fullmatch(value)
        if match is None:
            return value
        variable = match.group(1)
        if variable not in env:
            raise MissingSecret(channel, key, variable)
        return env[variable]
    if isinstance(value, dict):
        return {k: _resolve(v, channel, f"{key}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, channel, key, env) for v in value]
    return value


# -- scheduling (ordercore serve) ----------------------------------------------------------


@dataclass(frozen=True)
class ServeConfig:
    """What ``ordercore serve`` runs: each channel's policy and the watched POS folders."""

    channels: dict[str, ChannelPolicy] = field(default_factory=dict)
    """Policy per configured channel (the channels themselves: :func:`load_channels`)."""
    pos: dict[str, PosImportPolicy] = field(default_factory=dict)
    """Watched folder per POS channel name."""
    source: Path | None = None


def load_serve_config(path: str | os.PathLike[str] | None = None) -> ServeConfig:
    """Read the schedule of every channel and POS folder the config file describes.

    Secrets are not resolved here (only :func:`load_channels` reads them).
    """
    file = config_path(path)
    data = _read_document(file)
    where = f"config {file.name!r}"
    defaults = data.get("schedule", {})
    if not isinstance(defaults, dict):
        raise ChannelConfigError(where, "schedule", "must be a table")
    base = _policy(where, "schedule", defaults, ChannelPolicy())
    policies: dict[str, ChannelPolicy] = {}
    for name, table in _tables(data, file, "channels").items():
        own = table.get("schedule", {})
        if not isinstance(own, dict):
            raise ChannelConfigError(f"channel {name!r}", "schedule", "must be a table")
        kind = table.get("kind")
        mode = ChannelMode.WEBHOOK if kind in WEBHOOK_KINDS else base.mode
        policies[name] = _policy(f"channel {name!r}", "schedule", own, _replace(base, mode=mode))
    folders = {
        name: _pos_policy(name, table, file.parent)
        for name, table in _tables(data, file, "pos").items()
    }
    return ServeConfig(channels=policies, pos=folders, source=file)


def load_notifier(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> NotifierPort | None:
    """Build the ``[notifier]`` the config file names (None when it names none).

    ``factory = "module:callable"`` or ``kind = NAME`` (an ``ordercore.notifiers`` entry
    point); the other keys (``${VAR}`` resolved) are passed as the factory's one argument.
    """
    file = config_path(path)
    table = _read_document(file).get("notifier")
    if table is None:
        return None
    where = "notifier"
    if not isinstance(table, dict):
        raise ChannelConfigError(where, "notifier", "must be a table")
    env = os.environ if environ is None else environ
    config = {
        key: _resolve(value, "notifier", key, env)
        for key, value in table.items()
        if key not in ("kind", "factory")
    }
    if table.get("factory") is not None:
        factory = _import_factory(where, table["factory"])
    elif isinstance(table.get("kind"), str) and table["kind"]:
        factory = registry.load("ordercore.notifiers", table["kind"])
    else:
        raise ChannelConfigError(where, "kind", "set kind (an installed notifier) or factory")
    notifier = factory(config)
    if not isinstance(notifier, NotifierPort):
        raise ChannelConfigError(where, "factory", "did not build a NotifierPort")
    return notifier


def parse_duration(value: object) -> timedelta:
    """``"5m"``, ``"1h30m"``, ``"PT5M"`` or seconds as a number -> timedelta (ValueError)."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like '5m', '2h' or 'PT5M'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a duration like '5m', '2h' or 'PT5M'")
    text = value.strip().lower()
    if text.startswith(("p", "-p")):
        try:
            return _ISO_DURATION.validate_python(value.strip())
        except ValidationError:
            raise ValueError("is not an ISO 8601 duration") from None
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text.replace(" ", ""):
        raise ValueError("must be a duration like '90s', '5m', '2h', '1d' or '1h30m'")
    return timedelta(seconds=sum(float(number) * _UNITS[unit] for number, unit in parts))


def _replace(policy: ChannelPolicy, **changes: Any) -> ChannelPolicy:
    values = {f.name: getattr(policy, f.name) for f in fields(policy)} | changes
    return ChannelPolicy(**values)


def _policy(
    where: str, section: str, table: Mapping[str, Any], base: ChannelPolicy
) -> ChannelPolicy:
    changes: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{section}.{key}"
        if key not in _SCHEDULE_KEYS:
            known = ", ".join(sorted(_SCHEDULE_KEYS))
            raise ChannelConfigError(where, name, f"is not a schedule key (known: {known})", key)
        if key == "mode":
            try:
                changes["mode"] = ChannelMode(value)
            except ValueError:
                raise ChannelConfigError(
                    where, name, "must be 'poll' or 'webhook'", value
                ) from None
        elif key == "reconcile_every" and value in ("off", False):
            changes[key] = None
        else:
            try:
                changes[key] = parse_duration(value)
            except ValueError as exc:
                raise ChannelConfigError(where, name, str(exc), value) from None
    try:
        return _replace(base, **changes)
    except InvalidInput as exc:
        error = exc.errors[0]
        raise ChannelConfigError(
            where, f"{section}.{error.field}", error.message, error.value
        ) from None


def _pos_policy(name: str, table: Mapping[str, Any], base_dir: Path) -> PosImportPolicy:
    where = f"POS folder {name!r}"
    unknown = sorted(set(table) - _POS_KEYS)
    if unknown:
        known = ", ".join(sorted(_POS_KEYS))
        raise ChannelConfigError(where, unknown[0], f"is not a POS key (known: {known})")
    folder = table.get("folder")
    if not isinstance(folder, str) or not folder:
        raise ChannelConfigError(where, "folder", "must name the watched folder", folder)
    values: dict[str, Any] = {"folder": base_dir / Path(folder).expanduser()}
    if "import_at" in table:
        values["at"] = _time_of_day(where, table["import_at"])
    if "timezone" in table:
        values["timezone"] = _zone(where, table["timezone"])
    if "patterns" in table:
        patterns = table["patterns"]
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise ChannelConfigError(where, "patterns", "must be a list of glob patterns", patterns)
        values["patterns"] = tuple(patterns)
    for key in ("archive", "failed"):
        if key in table:
            value = table[key]
            if value is False and key == "archive":
                values[key] = None
            elif isinstance(value, str):
                values[key] = value
            else:
                raise ChannelConfigError(where, key, "must be a subfolder name", value)
    try:
        return PosImportPolicy(**values)
    except InvalidInput as exc:
        error = exc.errors[0]
        raise ChannelConfigError(where, error.field, error.message, error.value) from None


def _time_of_day(where: str, value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ChannelConfigError(where, "import_at", "must be a time of day like '02:00'", value)


def _zone(where: str, value: object) -> tzinfo:
    if value in ("UTC", "utc"):
        return UTC
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ChannelConfigError(
        where, "timezone", "must be an IANA time zone like 'Asia/Shanghai'", value
    )
