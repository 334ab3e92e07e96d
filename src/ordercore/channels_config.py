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
from pathlib import Path
from typing import Any

from ordercore import registry
from ordercore.errors import FieldError, InvalidInput
from ordercore.ports.channels import ChannelPort

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "ChannelConfigError",
    "MissingSecret",
    "config_path",
    "load_channel",
    "load_channels",
]

CONFIG_ENV = "ORDERCORE_CONFIG"
"""The environment variable that names the config file when ``--config`` is not given."""
DEFAULT_CONFIG = "ordercore.toml"
"""The config file looked for in the working directory."""

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
    where = f"config {file.name!r}"
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChannelConfigError(
            where, "file", f"not found (pass --config or set {CONFIG_ENV})", str(file)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChannelConfigError(where, "file", f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChannelConfigError(where, "file", f"is not valid TOML: {exc}") from None
    channels = data.get("channels", {})
    if not isinstance(channels, dict):
        raise ChannelConfigError(where, "channels", "must be a table of [channels.NAME] tables")
    for name, table in channels.items():
        if not isinstance(table, dict):
            raise ChannelConfigError(where, f"channels.{name}", "must be a table")
    return channels


def _build(name: str, table: Mapping[str, Any], env: Mapping[str, str]) -> ChannelPort:
    where = f"channel {name!r}"
    kind = table.get("kind")
    factory_path = table.get("factory")
    config = {
        key: _resolve(value, name, key, env)
        for key, value in table.items()
        if key not in ("kind", "factory")
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
