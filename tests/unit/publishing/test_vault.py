"""Tokens sealed at rest: round trip, key rotation, wrong keys, nothing secret shown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.publishing.platforms.base import Credentials
from services.publishing.vault import TokenVault, VaultError, generate_key

TOKEN = "EAAB-page-token-never-shown-0123456789"
REFRESH = "refresh-token-never-shown-9876543210"


def some_credentials(**kwargs):
    values = {
        "access_token": TOKEN,
        "refresh_token": REFRESH,
        "expires_at": datetime(2030, 3, 1, 12, 30, tzinfo=UTC),
        "scopes": ("pages_manage_posts", "pages_read_engagement"),
    }
    values.update(kwargs)
    return Credentials(**values)


def test_sealed_credentials_open_to_the_same_values():
    vault = TokenVault(generate_key())
    credentials = some_credentials()

    sealed = vault.seal(credentials)

    assert TOKEN not in sealed and REFRESH not in sealed
    assert vault.open(sealed) == credentials


def test_credentials_without_refresh_or_expiry_round_trip():
    vault = TokenVault(generate_key())
    credentials = Credentials(access_token=TOKEN)

    assert vault.open(vault.seal(credentials)) == credentials


def test_a_naive_expiry_is_kept_as_utc():
    vault = TokenVault(generate_key())

    opened = vault.open(vault.seal(some_credentials(expires_at=datetime(2030, 1, 1))))

    assert opened.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_a_token_sealed_under_the_old_key_opens_once_a_new_key_is_put_first():
    old, new = generate_key(), generate_key()
    sealed = TokenVault(old).seal(some_credentials())

    vault = TokenVault(f"{new}, {old}")

    assert vault.open(sealed) == some_credentials()
    assert not vault.is_current(sealed)


def test_rotate_reseals_under_the_newest_key():
    old, new = generate_key(), generate_key()
    sealed = TokenVault(old).seal(some_credentials())
    vault = TokenVault([new, old])

    rotated = vault.rotate(sealed)

    assert vault.is_current(rotated)
    assert TokenVault(new).open(rotated) == some_credentials()
    with pytest.raises(VaultError):
        TokenVault(old).open(rotated)


def test_new_seals_use_the_newest_key():
    old, new = generate_key(), generate_key()

    sealed = TokenVault([new, old]).seal(some_credentials())

    assert TokenVault(new).open(sealed) == some_credentials()


def test_a_wrong_key_is_a_clear_error_that_shows_no_secret():
    key, other = generate_key(), generate_key()
    sealed = TokenVault(key).seal(some_credentials())

    with pytest.raises(VaultError) as caught:
        TokenVault(other).open(sealed)

    text = str(caught.value)
    assert "cannot be opened" in text
    for secret in (TOKEN, REFRESH, key, other, sealed):
        assert secret not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_altered_data_does_not_open():
    vault = TokenVault(generate_key())
    sealed = vault.seal(some_credentials())
    altered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]

    with pytest.raises(VaultError):
        vault.open(altered)
    with pytest.raises(VaultError):
        vault.open("not a token at all")
    with pytest.raises(VaultError):
        vault.rotate("not a token at all")


def test_a_token_sealed_for_one_account_does_not_open_for_another():
    vault = TokenVault(generate_key())
    sealed = vault.seal(some_credentials(), context="oakfield-newsroom")

    assert vault.open(sealed, context="oakfield-newsroom") == some_credentials()
    with pytest.raises(VaultError):
        vault.open(sealed, context="riverside-newsroom")


def test_repr_never_shows_a_key():
    key = generate_key()

    vault = TokenVault(key)

    assert key not in repr(vault) and key not in str(vault)
    assert "hidden" in repr(vault)


def test_a_malformed_key_is_refused_without_echoing_it():
    bad = "this-is-not-a-fernet-key"

    with pytest.raises(VaultError) as caught:
        TokenVault(f"{generate_key()},{bad}")

    assert "number 2" in str(caught.value)
    assert bad not in str(caught.value)


def test_no_keys_is_an_error():
    with pytest.raises(VaultError):
        TokenVault(" , ")
