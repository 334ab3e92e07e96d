"""Channel configuration: TOML tables, ${ENV} secrets, kind lookup and factory override."""

from __future__ import annotations

from datetime import UTC, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ordercore.channels_config import (
    CONFIG_ENV,
    ChannelConfigError,
    MissingSecret,
    config_path,
    load_channel,
    load_channels,
    load_notifier,
    load_serve_config,
    parse_duration,
)
from ordercore.errors import UnknownAdapter
from ordercore.services.scheduler import ChannelMode, ChannelPolicy
from ordercore.testing.channels import FakeChannel
from support import notifiers

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


# -- scheduling ---------------------------------------------------------------------------

H5 = (
    'kind = "h5"\nbase_url = "http://127.0.0.1:9/api"\napi_token = "t"\n'
    'webhook_secrets = "whsec_MTIz"\n'
)


def test_channels_get_the_issue_defaults_and_webhook_kinds_a_safety_poll(tmp_path: Path) -> None:
    """Without schedule tables: polled every 5 min, h5/shopify safety-polled, reconciled hourly."""
    path = _write(tmp_path, f'[channels.a]\nfactory = "{FACTORY}"\n[channels.h]\n{H5}')
    plan = load_serve_config(path)
    assert plan.channels["a"] == ChannelPolicy()
    assert plan.channels["h"] == ChannelPolicy(mode=ChannelMode.WEBHOOK)
    assert plan.channels["h"].interval == timedelta(minutes=30)
    assert plan.channels["a"].reconcile_lookback == timedelta(hours=2)


def test_schedule_defaults_and_per_channel_tables_override_in_that_order(tmp_path: Path) -> None:
    """[schedule] changes every channel; [channels.NAME.schedule] changes one of them."""
    path = _write(
        tmp_path,
        '[schedule]\npoll_every = "2m"\nreconcile_lookback = "PT6H"\n'
        f'[channels.a]\nfactory = "{FACTORY}"\n'
        f'[channels.b]\nfactory = "{FACTORY}"\n'
        '[channels.b.schedule]\nmode = "webhook"\nsafety_poll_every = 600\n'
        'reconcile_every = "off"\n',
    )
    plan = load_serve_config(path)
    assert plan.channels["a"] == ChannelPolicy(
        poll_every=timedelta(minutes=2), reconcile_lookback=timedelta(hours=6)
    )
    assert plan.channels["b"] == ChannelPolicy(
        mode=ChannelMode.WEBHOOK,
        poll_every=timedelta(minutes=2),
        safety_poll_every=timedelta(minutes=10),
        reconcile_every=None,
        reconcile_lookback=timedelta(hours=6),
    )


def test_the_schedule_table_is_not_passed_to_the_adapter(tmp_path: Path) -> None:
    """An adapter that refuses unknown keys still builds when its channel has a schedule."""
    path = _write(tmp_path, f'[channels.h]\n{H5}[channels.h.schedule]\npoll_every = "1m"\n')
    assert load_channel("h", path).name == "h"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        ("PT5M", timedelta(minutes=5)),
        (45, timedelta(seconds=45)),
        (2.5, timedelta(seconds=2.5)),
    ],
)
def test_durations_are_read_in_several_spellings(text: object, expected: timedelta) -> None:
    """Short units, their combinations, ISO 8601 and plain seconds all read as durations."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('poll_every = "soon"', r"schedule\.poll_every.*'soon'"),
        ('poll_every = "0s"', r"schedule\.poll_every: must be positive"),
        ('mode = "push"', r"schedule\.mode: must be 'poll' or 'webhook'"),
        ('every = "5m"', r"schedule\.every: is not a schedule key \(known: mode, poll_every"),
        ("reconcile_every = true", r"schedule\.reconcile_every"),
    ],
)
def test_a_bad_schedule_names_the_channel_key_and_value(
    tmp_path: Path, table: str, match: str
) -> None:
    """Each schedule mistake raises ChannelConfigError naming channel, key and rule."""
    path = _write(
        tmp_path, f'[channels.a]\nfactory = "{FACTORY}"\n[channels.a.schedule]\n{table}\n'
    )
    with pytest.raises(ChannelConfigError, match=match) as caught:
        load_serve_config(path)
    assert "channel 'a'" in str(caught.value)


def test_a_pos_folder_is_read_relative_to_the_config_file(tmp_path: Path) -> None:
    """[pos.NAME]: folder relative to the file, daily time, time zone, patterns, archive off."""
    path = _write(
        tmp_path,
        '[pos.shop-pos]\nfolder = "exports"\nimport_at = "03:30"\n'
        'timezone = "Asia/Shanghai"\npatterns = ["*.CSV"]\narchive = false\n',
    )
    policy = load_serve_config(path).pos["shop-pos"]
    assert policy.folder == tmp_path / "exports"
    assert (policy.at, policy.timezone) == (time(3, 30), ZoneInfo("Asia/Shanghai"))
    assert (policy.patterns, policy.archive) == (("*.CSV",), None)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('import_at = "02:00"', "folder: must name the watched folder"),
        ('folder = "x"\nimport_at = "2am"', "import_at: must be a time of day"),
        ('folder = "x"\ntimezone = "Mars/Olympus"', "timezone: must be an IANA time zone"),
        ('folder = "x"\narchive = "../up"', "archive: must be a plain subfolder name"),
        ('folder = "x"\nwatch = true', "watch: is not a POS key"),
    ],
)
def test_a_bad_pos_table_names_the_key(tmp_path: Path, table: str, match: str) -> None:
    """Each POS folder mistake raises ChannelConfigError naming the key and the rule."""
    path = _write(tmp_path, f"[pos.p]\n{table}\n")
    with pytest.raises(ChannelConfigError, match=match):
        load_serve_config(path)


def test_the_notifier_table_builds_a_notifier_with_its_secrets_resolved(tmp_path: Path) -> None:
    """[notifier] factory gets the other keys, ${VAR} resolved; no table means None."""
    assert load_notifier(_write(tmp_path, "")) is None
    path = _write(
        tmp_path, '[notifier]\nfactory = "support.notifiers:make"\ntoken = "${HOOK_TOKEN}"\n'
    )
    notifier = load_notifier(path, environ={"HOOK_TOKEN": "t0k"})
    assert notifiers.BUILT[-1] == (notifier, {"token": "t0k"})


def test_the_default_pos_time_is_2am_utc(tmp_path: Path) -> None:
    """A [pos.NAME] with only a folder imports daily at 02:00 UTC."""
    policy = load_serve_config(_write(tmp_path, '[pos.p]\nfolder = "/srv/pos"\n')).pos["p"]
    assert (policy.at, policy.timezone, policy.folder) == (time(2, 0), UTC, Path("/srv/pos"))
