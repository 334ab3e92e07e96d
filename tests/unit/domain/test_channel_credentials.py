"""ChannelTokens (saved credentials) and CredentialStatus's refresh-token helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ordercore.domain.channels import ChannelTokens, CredentialStatus

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


def tokens(**overrides: object) -> ChannelTokens:
    fields: dict[str, object] = {
        "channel": "jd-flagship",
        "origin": "abc",
        "tokens": {"access_token": "live-access-XYZZY", "refresh_token": "live-refresh-PLUGH"},
        "expires_at": {"access_token": T0 + timedelta(days=1)},
        "refreshed_at": T0,
    }
    fields.update(overrides)
    return ChannelTokens.model_validate(fields)


def test_token_values_never_show_in_a_repr_or_a_dump() -> None:
    """repr, str and a JSON dump mask the values; secret() gives them to the adapter."""
    saved = tokens()
    shown = [repr(saved), str(saved), saved.model_dump_json()]
    assert not [text for text in shown if "XYZZY" in text or "PLUGH" in text]
    assert saved.secret("access_token") == "live-access-XYZZY"
    assert saved.secret("session") is None


def test_naive_times_are_refused() -> None:
    """A refresh time or an expiry without a zone: ValidationError naming it."""
    with pytest.raises(ValidationError, match="refreshed_at must be timezone-aware"):
        tokens(refreshed_at=datetime(2026, 11, 11, 8, 0))
    with pytest.raises(ValidationError, match=r"expires_at\[r2\] must be timezone-aware"):
        tokens(expires_at={"r2": datetime(2026, 11, 11, 8, 0)})


def test_refresh_due_needs_a_live_refresh_token_and_an_expiry_within_the_margin() -> None:
    """Due only when refreshable and the soonest expiry is within ``before``."""
    status = CredentialStatus(
        channel="c", expires_at={"access_token": T0 + timedelta(hours=2)}, refreshable=True
    )
    assert not status.refresh_due(T0, timedelta(hours=1))
    assert status.refresh_due(T0, timedelta(hours=2))
    fixed = status.model_copy(update={"refreshable": False})
    assert not fixed.refresh_due(T0, timedelta(hours=3))


def test_reauthorise_by_is_the_refresh_tokens_expiry_when_refreshable() -> None:
    """Refreshable: the refresh token's expiry; otherwise the soonest token or scope expiry."""
    expiries = {"access_token": T0 + timedelta(days=1), "r2": T0 + timedelta(hours=6)}
    refreshable = CredentialStatus(
        channel="c",
        expires_at=expiries,
        refreshable=True,
        refresh_expires_at=T0 + timedelta(days=14),
    )
    assert refreshable.reauthorise_by() == T0 + timedelta(days=14)
    fixed = refreshable.model_copy(update={"refreshable": False})
    assert fixed.reauthorise_by() == T0 + timedelta(hours=6)
