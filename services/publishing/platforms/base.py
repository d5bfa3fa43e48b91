"""What every platform adapter shares: the values it takes and gives, and how each
platform answer is classified.

One adapter per platform (``facebook``, ``instagram``, ``x``, ``linkedin``, ``webhook``,
``folder``), each a module of this package with the same shape: a class with
``publish``, ``delete``, ``lookup`` and ``find_recent``, talking to the platform's
documented HTTP API over ``httpx`` (``base_url`` points at the real API or at the
local sandbox in ``safepost.sandboxes``). No adapter ever sees an original: ``Media``
holds the redacted copy only.

Every answer is classified (never by substring-matching a body):

- success: a ``LivePost`` (the platform's id and the URL of the live post);
- ``RateLimitedError``: retry at ``retry_at`` (the reset time the platform gave);
- ``TransientError``: retry with back-off; nothing was created;
- ``AuthError``: the token is expired or revoked; the account needs reconnecting and
  the delivery waits;
- ``PermanentError``: the platform refused the content (its own message kept);
- ``AmbiguousError``: a timeout, dropped connection or 5xx on a call that creates
  something: the post may exist. Never retried blindly: reconciled first
  (``find_recent``);
- a malformed answer (not JSON, fields missing) is ``TransientError`` on a read, and
  ``AmbiguousError`` on a create: never a success.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Which consent scope an account's audience is: the purpose and, for a social
# platform, its own platform answer (None: the purpose-wide answer only).
SOCIAL = ("facebook", "instagram", "x", "linkedin")
PLATFORMS = (*SOCIAL, "webhook", "folder")


@dataclass(frozen=True)
class Media:
    """One redacted image to publish (never an original)."""

    photo_id: str
    data: bytes
    content_type: str = "image/jpeg"
    # A short-lived signed URL of this redacted copy, for platforms that fetch the
    # image themselves (Instagram); None where the adapter uploads the bytes.
    url: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """Decrypted tokens of one account, only ever held in memory by a worker."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Destination:
    """Where a post goes: the account on its platform, and how to reach it."""

    account_id: str
    platform: str
    external_id: str  # Page id, Instagram user id, organisation URN, X user id, ...
    base_url: str  # the API's base URL (the real platform, or the local sandbox)
    credentials: Credentials | None = None
    api_version: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LivePost:
    external_id: str
    url: str


@dataclass(frozen=True)
class RecentPost:
    """A post found on the account (for reconciliation)."""

    external_id: str
    url: str
    text: str
    media_count: int
    created_at: datetime | None = None


class PlatformError(Exception):
    """A platform said no, or did not say. ``kind`` is the class of the answer."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_at: datetime | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_at = retry_at


class RateLimitedError(PlatformError):
    kind = "rate_limited"


class TransientError(PlatformError):
    kind = "transient"


class AuthError(PlatformError):
    kind = "auth"


class PermanentError(PlatformError):
    kind = "permanent"


class AmbiguousError(PlatformError):
    kind = "ambiguous"


class Adapter(Protocol):
    platform: str

    def publish(
        self, dest: Destination, caption: str, media: Sequence[Media]
    ) -> LivePost:
        """Create the post; raise a ``PlatformError`` subclass on anything else.
        Staged uploads of a post that failed are cleaned up where the API allows."""

    def delete(self, dest: Destination, external_id: str) -> None:
        """Remove the post; a post that is already gone counts as deleted."""

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        """The live post, or None if the platform no longer has it."""

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The account's posts created since ``since`` (newest first), to find one
        whose creation answer was lost."""


def fingerprint(caption: str, media_count: int) -> str:
    """What identifies our post among an account's recent posts: its exact text and
    its number of images (platforms re-encode images, so bytes cannot be compared)."""
    text = " ".join(caption.split())
    return hashlib.sha256(f"{media_count}\n{text}".encode()).hexdigest()


def find_ours(
    recent: Sequence[RecentPost], caption: str, media_count: int
) -> RecentPost | None:
    """The one recent post with our fingerprint; None if there is none.

    Raises ``AmbiguousError`` when several match: a person must decide."""
    want = fingerprint(caption, media_count)
    found = [p for p in recent if fingerprint(p.text, p.media_count) == want]
    if len(found) > 1:
        raise AmbiguousError(
            f"{len(found)} recent posts have this caption and image count",
            code="several_matches",
        )
    return found[0] if found else None
