"""Short-lived signed URLs of redacted images, for platforms that fetch an image
themselves (Instagram's ``image_url``) when the store cannot presign (embedded mode).

The token names the redacted key and expires after ``LIFETIME`` seconds; the route
serves only keys under ``redacted/`` from the redacted store. An original can never
be reached: publishing never opens the originals store.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

LIFETIME = 900  # seconds: long enough for a platform to fetch it, no longer
SALT = "safepost.publishing.media"


class MediaLinkError(Exception):
    """The link is forged, expired or not for a redacted image."""


def sign(secret_key: str, key: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=SALT).dumps({"k": key})


def open_link(secret_key: str, token: str, max_age: int = LIFETIME) -> str:
    """The redacted key a link names; raises MediaLinkError if it may not be served."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=SALT).loads(
            token, max_age=max_age
        )
    except SignatureExpired:
        raise MediaLinkError("the link has expired") from None
    except BadSignature:
        raise MediaLinkError("not a link this system made") from None
    key = data.get("k") if isinstance(data, dict) else None
    if not isinstance(key, str) or not key.startswith("redacted/") or ".." in key:
        raise MediaLinkError("not a redacted image")
    return key
