"""Platform tokens encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a
rotatable list of keys.

The keys come from settings as one comma-separated string of Fernet keys (32 random
bytes, urlsafe base64; ``generate_key()`` makes one), **newest first**: new seals use
the first key, and a token sealed under any listed key still opens. To rotate, put a
new key first, re-seal every stored token with ``rotate`` (or when ``is_current`` says
so), then drop the old key. ``cryptography.fernet.MultiFernet`` does the work:
https://cryptography.io/en/latest/fernet/#cryptography.fernet.MultiFernet

Inside the ciphertext is JSON: the access token, refresh token, expiry and scopes,
and an optional ``context`` (e.g. the account id) that ``open`` must be given again,
so a sealed token copied onto another account's row does not open there.

Nothing here logs, and no error message or ``repr`` ever contains a key or a token.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.publishing.platforms.base import Credentials

FORMAT = 1


class VaultError(Exception):
    """A sealed token cannot be opened (or keys are unusable). The message never
    holds a key or a token."""


def generate_key() -> str:
    """A new random Fernet key, as the text to put in settings."""
    return Fernet.generate_key().decode("ascii")


class TokenVault:
    """Seals ``Credentials`` into an opaque string and opens it again."""

    def __init__(self, keys: str | Sequence[str]):
        """``keys``: newest first, either a comma-separated string (as in settings)
        or a sequence of keys."""
        texts = keys.split(",") if isinstance(keys, str) else list(keys)
        texts = [k.strip() for k in texts if k.strip()]
        if not texts:
            raise VaultError("no token encryption key is configured")
        fernets = [_fernet(text, number) for number, text in enumerate(texts, 1)]
        self._newest = fernets[0]
        self._all = MultiFernet(fernets)
        self._count = len(fernets)

    def __repr__(self) -> str:
        return f"TokenVault(<{self._count} key(s) hidden>)"

    __str__ = __repr__

    def seal(self, credentials: Credentials, *, context: str = "") -> str:
        """The credentials encrypted under the newest key."""
        return self._all.encrypt(_dump(credentials, context)).decode("ascii")

    def open(self, sealed: str, *, context: str = "") -> Credentials:
        """The credentials ``seal`` was given; ``VaultError`` if no listed key opens
        it, it was altered, or it was sealed for another ``context``."""
        return _load(self._decrypt(self._all, sealed), context)

    def rotate(self, sealed: str) -> str:
        """The same credentials re-encrypted under the newest key."""
        try:
            return self._all.rotate(_ascii(sealed)).decode("ascii")
        except InvalidToken:
            raise _unopenable() from None

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` is already under the newest key (no rotation needed)."""
        try:
            self._newest.decrypt(_ascii(sealed))
        except InvalidToken:
            return False
        return True

    @staticmethod
    def _decrypt(fernet: MultiFernet, sealed: str) -> bytes:
        try:
            return fernet.decrypt(_ascii(sealed))
        except InvalidToken:
            raise _unopenable() from None


def _fernet(text: str, number: int) -> Fernet:
    try:
        return Fernet(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise VaultError(
            f"token key number {number} is not a Fernet key "
            "(32 random bytes, urlsafe base64: see generate_key())"
        ) from None


def _ascii(sealed: str) -> bytes:
    try:
        return sealed.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise _unopenable() from None


def _unopenable() -> VaultError:
    return VaultError(
        "a stored token cannot be opened with any configured key (wrong or retired "
        "key, or altered data): reconnect the account or restore the key"
    )


def _dump(credentials: Credentials, context: str) -> bytes:
    expires = credentials.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)  # the codebase keeps UTC everywhere
    record = {
        "v": FORMAT,
        "context": context,
        "access_token": credentials.access_token,
        "refresh_token": credentials.refresh_token,
        "expires_at": expires.isoformat() if expires else None,
        "scopes": list(credentials.scopes),
    }
    return json.dumps(record, separators=(",", ":")).encode()


def _load(plain: bytes, context: str) -> Credentials:
    try:
        record: Any = json.loads(plain)
        if record["v"] != FORMAT or not isinstance(record["access_token"], str):
            raise ValueError
        if record.get("context", "") != context:
            raise VaultError("this stored token belongs to another account")
        expires = record.get("expires_at")
        refresh = record.get("refresh_token")
        return Credentials(
            access_token=record["access_token"],
            refresh_token=refresh if isinstance(refresh, str) else None,
            expires_at=datetime.fromisoformat(expires) if expires else None,
            scopes=tuple(str(s) for s in record.get("scopes") or ()),
        )
    except (ValueError, KeyError, TypeError):
        raise VaultError("a stored token is not in the expected format") from None
