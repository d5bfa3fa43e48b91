"""The demo trust: two schools, one account per role per school, and publishing
accounts: a folder (``<school>-newsroom``) and, when the platform sandboxes run, one
account per platform pointing at them, connected already (a newcomer sees a post go
live without signing in to anything)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safepost.identity.store import RoleGrant, UserStore

if TYPE_CHECKING:
    from safepost.sandboxes.run import Sandboxes

SCHOOLS = {
    "oakfield": "Oakfield Primary School",
    "riverside": "Riverside Academy",
}
ROLES = ("teacher", "approver", "it_auditor", "admin")
TRUST = "Demo Learning Trust"
SEEDER = "seed-demo"
# The school's publishing accounts on the sandboxes: account id suffix -> platform.
PLATFORM_ACCOUNTS = {
    "facebook": "facebook",
    "instagram": "instagram",
    "x": "x",
    "linkedin": "linkedin",
    "website": "webhook",
}
SITES = ("facebook", "instagram", "x", "linkedin", "webhook", "folder")
PLATFORM_NAMES = {
    "facebook": "Facebook Page",
    "instagram": "Instagram",
    "x": "X",
    "linkedin": "LinkedIn page",
    "webhook": "website",
}
# What IT answered for the demo's register of approved sites (a demo, not advice).
DUE_DILIGENCE = {
    "audience": "Public; the school cannot limit it. Demo answer.",
    "data_location": "Demo: a local sandbox on this machine; nothing leaves it.",
    "removal": "Deleted through the platform's API; gone at once. Demo answer.",
    "minimum_age": "13; the account addresses parents. Demo answer.",
    "reporting_abuse": "The designated owner watches and reports. Demo answer.",
    "comments_and_tags": "Comments limited, tagging off. Demo answer.",
    "terms_of_use": "Read by the trust's IT (demo).",
    "profile_standard": "The profile shows the trust's details and logo (demo).",
    "account_security": "Two-step sign-in for every manager (demo).",
}


def folder_account(school: str) -> str:
    """The school's folder publishing target (account ids are trust-unique)."""
    return f"{school}-newsroom"


def platform_account(school: str, suffix: str) -> str:
    """The school's account on a platform sandbox, e.g. ``oakfield-facebook``."""
    return f"{school}-{suffix}"


def owner(school: str) -> str:
    """The designated owner of the school's accounts: its approver."""
    return f"approver.{school}"


def footer(school: str) -> str:
    """The registered-office text added to every caption (policy 004 §7.1)."""
    return (
        f"{SCHOOLS.get(school, school)} is part of the {TRUST}, registered in England "
        "no. 01234567."
    )


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    roles: tuple[str, ...]


def demo_users() -> list[tuple[str, str, list[RoleGrant]]]:
    people: list[tuple[str, str, list[RoleGrant]]] = []
    for school, name in SCHOOLS.items():
        for role in ROLES:
            username = f"{role.replace('_', '-')}.{school}"
            display = f"{role.replace('_', ' ').title()}, {name}"
            people.append((username, display, [RoleGrant(school, role)]))
    people.append(
        ("coo", "Chief Operating Officer (trust)", [RoleGrant("*", "approver")])
    )
    people.append(("trust-admin", "Trust administrator", [RoleGrant("*", "admin")]))
    people.append(
        ("trust-it", "Trust IT services manager", [RoleGrant("*", "it_auditor")])
    )
    return people


def seed(
    system_ports: dict[str, Any],
    publish_root: Path | None = None,
    sandboxes: Sandboxes | None = None,
) -> list[DemoUser]:
    """Create what is missing (idempotent); return new accounts and passwords.

    With ``sandboxes``, each school also gets its accounts on them, pointed at this
    run's sandbox ports and connected with tokens the sandboxes just issued (stored
    encrypted). A folder account's place is always ``<publishing root>/<school>/
    <account>``, built by publishing; ``publish_root`` is only said for callers."""
    from services.consent import admin as consent_admin

    publishing = system_ports["publishing"]
    approve_sites(publishing)
    for slug, name in SCHOOLS.items():
        consent_admin.add_school(system_ports["consent"], slug, name)
        consent_admin.seed_demo_pupils(system_ports["consent"], slug)
        # The newsroom folder keeps the caption as written (no footer): it is the
        # school's own archive, not a public profile.
        _account(
            publishing, slug, folder_account(slug), "folder", f"{name} newsroom folder"
        )
        if sandboxes is not None:
            connect_platform_accounts(publishing, slug, sandboxes)
    users: UserStore = system_ports["identity"].users
    created: list[DemoUser] = []
    for username, display, grants in demo_users():
        if users.exists(username):
            continue
        password = secrets.token_urlsafe(12)
        users.add(username, display, password, grants)
        created.append(
            DemoUser(username, password, tuple(f"{g.role}@{g.school}" for g in grants))
        )
    return created


def approve_sites(ports: Any) -> None:
    """IT's register approves every platform the demo uses (only those it has never
    looked at: a withdrawal made in the demo stays)."""
    from services.publishing import sites

    for platform in SITES:
        if ports.sites is not None and ports.sites.get(platform) is None:
            sites.approve(ports, platform, DUE_DILIGENCE, by=SEEDER)


def connect_platform_accounts(ports: Any, school: str, sandboxes: Sandboxes) -> None:
    """The school's account on each sandbox, pointed at this run's ports and
    connected with the tokens the sandbox issued for it."""
    for suffix, platform in PLATFORM_ACCOUNTS.items():
        issued = sandboxes.issued[school][platform]
        account_id = platform_account(school, suffix)
        config = {"purpose": "website"} if platform == "webhook" else {}
        label = f"{SCHOOLS.get(school, school)} {PLATFORM_NAMES[platform]} (sandbox)"
        account = _account(
            ports,
            school,
            account_id,
            platform,
            label,
            issued.external_id,
            config,
            footer(school),
        )
        moved = (issued.external_id, issued.api_base)
        if (account.external_id, account.api_base) != moved:
            ports.accounts.update(
                replace(
                    account, external_id=issued.external_id, api_base=issued.api_base
                )
            )
        if ports.tokens is not None:
            ports.tokens.put(account_id, issued.credentials, by=SEEDER)


def _account(
    ports: Any,
    school: str,
    account_id: str,
    kind: str,
    name: str,
    external_id: str = "",
    config: dict[str, Any] | None = None,
    footer_text: str = "",
) -> Any:
    """Add the account unless it exists (with the school's approver as its
    designated owner); one from an older seed without an owner gets one. The
    account as stored."""
    from services.publishing import admin as publishing_admin

    publishing_admin.add_account(
        ports,
        school,
        account_id,
        kind,
        name,
        config,
        external_id=external_id,
        owner=owner(school),
        footer=footer_text,
    )
    account = ports.accounts.get(account_id)
    if account is not None and not account.owner:
        account = publishing_admin.update_account(
            ports, account_id, {"owner": owner(school)}
        )
    return account


def demo_device_codes(intake_ports: Any) -> dict[str, str]:
    """Each demo teacher's approved trust device, and a fresh one-time enrolment code
    for it (valid 15 minutes): entered once on the upload page, it lets the browser
    upload. Uploads need an approved device, as the trust's policy says."""
    from services.intake import domain as intake
    from services.intake import handlers as devices

    codes: dict[str, str] = {}
    existing = intake_ports.register.listing(None)
    for school in SCHOOLS:
        owner = f"teacher.{school}"
        device = next(
            (d for d in existing if d.owner == owner and d.status == intake.APPROVED),
            None,
        )
        if device is None:
            device = devices.register(
                intake_ports,
                school=school,
                owner=owner,
                kind=intake.TRUST,
                name="Demo school iPad",
                by="seed-demo",
            )
            device = devices.approve(intake_ports, device.device_id, by="seed-demo")
        code, _ = devices.enrolment_code(intake_ports, device.device_id, by="seed-demo")
        codes[owner] = code
    return codes


def write_credentials(data_dir: Path, created: list[DemoUser]) -> Path:
    """Append new demo passwords to a file only the owner can read."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "demo-credentials.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        for user in created:
            fh.write(f"{user.username}\t{user.password}\t{','.join(user.roles)}\n")
    return path


def format_credentials(created: list[DemoUser]) -> str:
    width = max((len(u.username) for u in created), default=8)
    lines = [
        f"  {u.username:<{width}}  {u.password}  ({', '.join(u.roles)})"
        for u in created
    ]
    return "\n".join(lines)


def format_sandboxes(sandboxes: Sandboxes) -> str:
    """Where a newcomer sees their approved post go live."""
    lines = [f"  {label}: {url}" for label, url in sandboxes.pages().items()]
    return (
        "See your post go live at the platform sandboxes (local stand-ins for the "
        "real platforms; they keep posts in memory only, so a restart forgets them):\n"
        + "\n".join(lines)
    )
