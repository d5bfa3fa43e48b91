"""Administration of publishing accounts (the admin page, the HTTP API, the CLI and
the demo seed).

Every account is checked before it is stored: its platform is one of
``domain.KINDS`` and approved in the trust's register (to add one); its id fits the
pattern; its platform id is the platform's kind of id (Facebook and Instagram numeric
ids, an X numeric user id, a LinkedIn ``urn:li:organization:<digits>``, a webhook's
https address); it names its designated owner (a username, policy 004 §7.3.6); its
footer is at most 500 characters. A folder's place is always built on the server from
school and account (``<root>/<school>/<account>``): nobody gives a path. When
``by`` (the signed-in person) is given, only an admin of the account's school may
add or change it; the CLI and the demo seed, run on the server, pass none.

An account that needs a token (social platforms and webhooks) starts ``needs
reconnect`` ("not connected yet") until an admin connects it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from services.publishing import accounts, domain, sites
from services.publishing.bootstrap import Ports
from services.publishing.platforms.folder import folder_external_id
from services.publishing.ports import Unit
from shared import auth
from shared.errors import ConflictError, InvalidInputError, NotFoundError

OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
MAX_NAME, MAX_FOOTER, MAX_URL = 200, 500, 300
TOKENED = (*domain.SOCIAL, "webhook")  # accounts that need a token or a secret
NOT_CONNECTED = "not connected yet"
UPDATABLE = frozenset({"name", "external_id", "owner", "footer", "enabled", "config"})
CONFIG_KEYS = frozenset({"purpose", "consent_platform"})
_NUMERIC = re.compile(r"^[0-9]{1,30}$")
_X_USER = re.compile(r"^[0-9]{1,19}$")
_LINKEDIN_ORG = re.compile(r"^urn:li:organization:[0-9]{1,20}$")
EXTERNAL_ID_HELP = {
    "facebook": "the Page's numeric id (blank: the only Page you manage, when you "
    "connect)",
    "instagram": "the Instagram professional account's numeric id (blank: the only "
    "one linked to a Page you manage, when you connect)",
    "x": "the X account's numeric user id",
    "linkedin": "the organisation's URN, urn:li:organization:<digits>",
    "webhook": "the website's https:// address that receives the posts",
    "folder": "none: the folder is <publishing root>/<school>/<account>",
}


def add_account(
    ports: Ports,
    school: str,
    account_id: str,
    kind: str,
    name: str,
    config: Mapping[str, Any] | None = None,
    enabled: bool = True,
    *,
    external_id: str = "",
    owner: str = "",
    footer: str = "",
    by: auth.Identity | None = None,
) -> bool:
    """Add a publishing account; True if added, False if it was there already.

    An account id is unique across schools: the same id for another school is a 409.
    An account can only be added on a site the trust's register approves.
    """
    if not domain.SCHOOL.match(school):
        raise InvalidInputError(f"not a school slug: {school}", code="bad_school")
    if by is not None:
        auth.require_role(by, school, "admin")
    if not domain.ACCOUNT_ID.match(account_id):
        raise InvalidInputError(
            f"not an account id: {account_id!r} (letters, digits, '.', '_' or '-', "
            "up to 64)",
            code="bad_account_id",
        )
    _check_kind(kind)
    tokened = kind in TOKENED
    account = checked(
        ports,
        domain.Account(
            account_id=account_id,
            school_id=school,
            kind=kind,
            name=name,
            config=dict(config or {}),
            enabled=enabled,
            external_id=external_id,
            owner=owner,
            footer=footer,
            connection=domain.NEEDS_RECONNECT if tokened else domain.ACTIVE,
            status_reason=NOT_CONNECTED if tokened else "",
        ),
    )
    with ports.unit() as unit:
        added = _add(ports, unit, account)
        unit.commit()
    return added


def _add(ports: Ports, unit: Unit, account: domain.Account) -> bool:
    """Add and announce it in ``unit``; False if it was there (for the same school)."""
    existing = unit.accounts.get(account.account_id)
    if existing is None:
        if not sites.is_approved(ports, account.kind):
            raise ConflictError(
                f"{sites.name(account.kind)} is not an approved site in the trust's "
                "register: ask IT to approve it first",
                code="site_not_approved",
            )
        if accounts.add(unit, account):
            return True
        existing = unit.accounts.get(account.account_id)
    if existing is not None and existing.school_id != account.school_id:
        raise ConflictError(
            f"account {account.account_id} belongs to another school",
            code="account_taken",
        )
    return False


def update_account(
    ports: Ports,
    account_id: str,
    changes: Mapping[str, Any],
    *,
    by: auth.Identity | None = None,
) -> domain.Account:
    """Change an account's name, platform id, owner, footer, enabled state or
    settings (never its school or platform); the account as stored. A new platform
    id or address means the stored token is for something else: connect again."""
    with ports.unit() as unit:
        changed = _update(ports, unit, account_id, changes, by)
        unit.commit()
    return changed


def _update(
    ports: Ports,
    unit: Unit,
    account_id: str,
    changes: Mapping[str, Any],
    by: auth.Identity | None,
) -> domain.Account:
    account = unit.accounts.get(account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}", code="unknown_account")
    if by is not None:
        auth.require_role(by, account.school_id, "admin")
    unknown = sorted(set(changes) - UPDATABLE)
    if unknown:
        raise InvalidInputError(
            "cannot change: " + ", ".join(unknown), code="not_changeable"
        )
    values = {k: _typed(k, v) for k, v in changes.items()}
    changed = checked(ports, replace(account, **values))
    moved = changed.external_id != account.external_id
    was_connected = account.status_reason != NOT_CONNECTED
    if changed.kind in TOKENED and moved and was_connected:
        changed = replace(
            changed,
            connection=domain.NEEDS_RECONNECT,
            status_reason="its platform id or address changed: connect it again",
        )
    if changed != account:
        accounts.save(unit, changed)
    return changed


def checked(ports: Ports, account: domain.Account) -> domain.Account:
    """The account with its fields checked and normalised; ``InvalidInputError``
    naming the first problem."""
    _check_kind(account.kind)
    name = account.name.strip() or account.account_id
    if len(name) > MAX_NAME:
        raise InvalidInputError(f"the name is longer than {MAX_NAME} characters")
    owner = account.owner.strip()
    if not owner:
        raise InvalidInputError(
            "say who the designated owner is (the username of the staff member who "
            "oversees the account)",
            code="owner_required",
        )
    if not OWNER.match(owner):
        raise InvalidInputError(f"not a username: {owner!r}", code="bad_owner")
    footer = account.footer.strip()
    if len(footer) > MAX_FOOTER:
        raise InvalidInputError(
            f"the footer is {len(footer)} characters; at most {MAX_FOOTER}",
            code="footer_too_long",
        )
    return replace(
        account,
        name=name,
        owner=owner,
        footer=footer,
        external_id=_external_id(account),
        config=_config(ports, account),
    )


def status_in_words(account: domain.Account) -> str:
    """Active / Not connected yet / Needs reconnecting: <reason> / Disabled."""
    if not account.enabled:
        return "Disabled"
    if account.connection == domain.NEEDS_RECONNECT:
        if account.status_reason == NOT_CONNECTED:
            return "Not connected yet"
        why = account.status_reason or "its token stopped working"
        return f"Needs reconnecting: {why}"
    return "Active"


def expiry_in_words(expires_at: datetime | None, now: datetime) -> str:
    """'expires in 3 days', 'expired 2 hours ago'; '' when there is no expiry."""
    if expires_at is None:
        return ""
    left = expires_at - now
    span = _span(abs(left))
    return f"expires in {span}" if left > timedelta(0) else f"expired {span} ago"


def _span(delta: timedelta) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = round(delta.total_seconds() / size)
        if count >= 1 and delta.total_seconds() >= size * 0.95:
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def _check_kind(kind: str) -> None:
    if kind not in domain.KINDS:
        raise InvalidInputError(
            f"unsupported account kind {kind}; one of " + ", ".join(domain.KINDS),
            code="unsupported_kind",
        )


def _external_id(account: domain.Account) -> str:
    value = account.external_id.strip()
    kind = account.kind
    if kind == "folder":
        built = folder_external_id(account.school_id, account.account_id)
        if value and value != built:
            raise InvalidInputError(
                "a folder's place is built from its school and account; it cannot "
                "be given",
                code="bad_external_id",
            )
        return built
    if kind == "webhook":
        return _webhook_url(value)
    if kind in ("facebook", "instagram"):
        ok = not value or bool(_NUMERIC.match(value))
    elif kind == "x":
        ok = bool(_X_USER.match(value))
    else:
        ok = bool(_LINKEDIN_ORG.match(value))
    if not ok:
        raise InvalidInputError(
            f"{sites.name(kind)} needs {EXTERNAL_ID_HELP[kind]}; {value!r} is not one",
            code="bad_external_id",
        )
    return value


def _webhook_url(value: str) -> str:
    problem = (
        "a webhook's address must be an https:// URL (http:// only on this machine: "
        "localhost, 127.0.0.1 or ::1), without a user name or password"
    )
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        userinfo = parts.username is not None or parts.password is not None
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidInputError(problem, code="bad_external_id") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and _loopback(host))
    if not value or not host or userinfo or not secure or parts.fragment:
        raise InvalidInputError(problem, code="bad_external_id")
    if len(value) > MAX_URL or _unroutable(host):
        raise InvalidInputError(problem, code="bad_external_id")
    return value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unroutable(host: str) -> bool:
    """An IP literal no website lives at (link-local cloud metadata, multicast...)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved


def _config(ports: Ports, account: domain.Account) -> dict[str, Any]:
    config = dict(account.config)
    if "path" in config:
        _check_built_path(ports, account, config.pop("path"))
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise InvalidInputError(
            "unknown account setting(s): " + ", ".join(unknown), code="unknown_setting"
        )
    if account.kind in domain.SOCIAL and config:
        raise InvalidInputError(
            "a social account's audience is always social_media on its own platform",
            code="unknown_setting",
        )
    purpose = config.get("purpose")
    if purpose is not None and purpose not in domain.PURPOSES:
        raise InvalidInputError(
            "purpose: one of " + ", ".join(domain.PURPOSES), code="bad_purpose"
        )
    platform = config.get("consent_platform")
    if platform is not None and platform not in domain.SOCIAL:
        raise InvalidInputError(
            "consent_platform: one of " + ", ".join(domain.SOCIAL), code="bad_purpose"
        )
    return {k: v for k, v in config.items() if v is not None}


def _check_built_path(ports: Ports, account: domain.Account, given: Any) -> None:
    """The old free ``path`` setting is gone: a folder is always
    ``<root>/<school>/<account>``. A path naming exactly that place is accepted
    (and not kept); any other is refused."""
    root = ports.publish_root
    built = (
        None if root is None else PurePath(root, account.school_id, account.account_id)
    )
    if account.kind != "folder" or built is None or PurePath(str(given)) != built:
        raise InvalidInputError(
            "a folder's place is built from its school and account "
            "(<publishing root>/<school>/<account>); a path cannot be given",
            code="bad_path",
        )


def _typed(key: str, value: Any) -> Any:
    if key == "enabled":
        if not isinstance(value, bool):
            raise InvalidInputError("enabled: true or false")
        return value
    if key == "config":
        if not isinstance(value, Mapping):
            raise InvalidInputError("config: an object")
        return dict(value)
    if not isinstance(value, str):
        raise InvalidInputError(f"{key}: a text")
    return value
