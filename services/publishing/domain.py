"""Publishing rules: accounts, whether a post may go to one, delivery markers. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

KINDS = ("folder",)  # later: facebook, instagram, x, linkedin, webhook
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
SCHOOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
STARTED, DONE, FAILED = "started", "done", "failed"


@dataclass(frozen=True)
class Account:
    account_id: str
    school_id: str
    kind: str
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True)
class Image:
    photo_id: str
    data: bytes


@dataclass(frozen=True)
class Publication:
    """What goes out: the approved caption and the redacted images, nothing else."""

    post_id: str
    school_id: str
    author_id: str
    approved_by: str
    caption: str
    images: tuple[Image, ...]


@dataclass(frozen=True)
class Delivery:
    """The marker of one post on one account: started before the write, then done."""

    post_id: str
    account_id: str
    school_id: str
    status: str
    at: datetime
    target: str = ""
    location: str = ""
    reason: str = ""


def refusal(account: Account | None, account_id: str, school_id: str) -> str | None:
    """Why the post may not go to this account (default deny), or None if it may."""
    if account is None:
        return "unknown_account"
    if not account.enabled:
        return "account_disabled"
    if account.school_id != school_id:
        return "school_mismatch"
    if account.kind not in KINDS:
        return "unsupported_target"
    return None


def folder_path(account: Account, publish_root: PurePath | None) -> PurePath | None:
    """The account's folder: its configured path, else ``<root>/<school>/<account>``."""
    configured = account.config.get("path")
    if configured:
        return PurePath(str(configured))
    if publish_root is None:
        return None
    return publish_root / account.school_id / account.account_id


def within(path: PurePath, root: PurePath) -> bool:
    """Whether ``path`` (absolute, without ``..``) lies inside ``root``."""
    return path.is_absolute() and ".." not in path.parts and path.is_relative_to(root)
