"""Channel configuration: TOML tables, ${ENV} secrets, kind lookup and factory override."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordercore.channels_config import (
    CONFIG_ENV,
    ChannelConfigError,
    MissingSecret,
    config_path,
    load_channel,
    load_channels,
)
from ordercore.errors import UnknownAdapter
from ordercore.testing.channels import FakeChannel

FACTORY = "support.fake_channels:make"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ordercore.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_factory_builds_each_channel_under_its_name(tmp_path: Path) -> None:
    """Every [channels.NAME] table becomes a channel called NAME, built by its factory."""
    path = _write(
        tmp_path,
        f'[channels.a]\nfactory = "{FACTORY}"\n[channels.b]\nfactory = "{FACTORY}"\n',
    )
    channels = load_channels(path)
    assert sorted(channels) == ["a", "b"]
    assert all(isinstance(c, FakeChannel) for c in channels.values())
    assert channels["b"].name == "b"


def test_env_reference_is_resolved_into_the_adapter_config(tmp_path: Path) -> None:
    """A "${VAR}" value reaches the factory as the variable's value."""
    path = _write(tmp_path, f'[channels.a]\nfactory = "{FACTORY}"\nsecret = "${{SHOP_SECRET}}"\n')
    channel = load_channel("a", path, environ={"SHOP_SECRET": "s3cr3t"})
    assert isinstance(channel, FakeChannel)
    assert (
        channel.verify_webhook(
            {"X-Fake-Signature": channel.sign(b'{"id": "m", "orders": []}')},
            b'{"id": "m", "orders": []}',
            channel.platform.clock.now(),
        ).message_id
        == "m"
    )


def test_missing_env_variable_names_it_and_no_value(tmp_path: Path) -> None:
    """An unset variable raises MissingSecret naming the variable, printing no secret."""
    path = _write(
        tmp_path,
        f'[channels.a]\nfactory = "{FACTORY}"\nsecret = "${{SHOP_SECRET}}"\nother = "visible"\n',
    )
    with pytest.raises(MissingSecret, match="SHOP_SECRET") as caught:
        load_channels(path, environ={})
    assert caught.value.variable == "SHOP_SECRET"
    assert "visible" not in str(caught.value)


def test_only_the_named_channel_needs_its_secrets(tmp_path: Path) -> None:
    """load_channel builds one channel; another channel's unset secret does not matter."""
    path = _write(
        tmp_path,
        f'[channels.a]\nfactory = "{FACTORY}"\n'
        f'[channels.b]\nfactory = "{FACTORY}"\nsecret = "${{UNSET_VAR}}"\n',
    )
    assert load_channel("a", path, environ={}).name == "a"


def test_unknown_kind_lists_the_known_adapters(tmp_path: Path) -> None:
    """A kind that no entry point registers raises UnknownAdapter."""
    path = _write(tmp_path, '[channels.a]\nkind = "no-such-platform"\n')
    with pytest.raises(UnknownAdapter, match="no-such-platform"):
        load_channels(path)


def test_unknown_channel_name_lists_the_configured_ones(tmp_path: Path) -> None:
    """Asking for a channel the file does not configure names those it does."""
    path = _write(tmp_path, f'[channels.a]\nfactory = "{FACTORY}"\n')
    with pytest.raises(ChannelConfigError, match="configured channels: a"):
        load_channel("zz", path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[channels.a]\nsecret = 1\n", "set kind"),
        ('[channels.a]\nfactory = "not a path"\n', "package.module:callable"),
        ('[channels.a]\nfactory = "no_such_module_x:make"\n', "cannot be imported"),
        ('[channels.a]\nfactory = "builtins:slice"\n', "ChannelPort"),
        ("[channels\n", "not valid TOML"),
    ],
)
def test_bad_tables_raise_a_typed_error(tmp_path: Path, text: str, match: str) -> None:
    """Missing kind, bad factory paths, non-channels and broken TOML are ChannelConfigError."""
    path = _write(tmp_path, text)
    with pytest.raises(ChannelConfigError, match=match):
        load_channels(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config file that does not exist raises ChannelConfigError naming --config."""
    with pytest.raises(ChannelConfigError, match="--config"):
        load_channels(tmp_path / "absent.toml")


def test_config_path_prefers_argument_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config wins over $ORDERCORE_CONFIG, which wins over ./ordercore.toml."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert config_path() == Path("ordercore.toml")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "env.toml"))
    assert config_path() == tmp_path / "env.toml"
    assert config_path(tmp_path / "arg.toml") == tmp_path / "arg.toml"
