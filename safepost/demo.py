"""The demo trust: two schools, one account per role per school, folder targets."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safepost.identity.store import RoleGrant, UserStore

SCHOOLS = {
    "oakfield": "Oakfield Primary School",
    "riverside": "Riverside Academy",
}
ROLES = ("teacher", "approver", "it_auditor", "admin")


def folder_account(school: str) -> str:
    """The school's folder publishing target (account ids are trust-unique)."""
    return f"{school}-newsroom"


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


def seed(system_ports: dict[str, Any], publish_root: Path) -> list[DemoUser]:
    """Create what is missing (idempotent); return new accounts and passwords."""
    from services.consent import admin as consent_admin
    from services.publishing import admin as publishing_admin

    for slug, name in SCHOOLS.items():
        consent_admin.add_school(system_ports["consent"], slug, name)
        consent_admin.seed_demo_pupils(system_ports["consent"], slug)
        account = folder_account(slug)
        publishing_admin.add_account(
            system_ports["publishing"],
            slug,
            account,
            "folder",
            f"{name} newsroom folder",
            {"path": str(publish_root / slug / account)},
        )
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


def demo_device_codes(intake_ports: Any) -> dict[str, str]:
    """Each demo teacher's approved trust device, and a fresh one-time enrolment code
    for it (valid 15 minutes): entered once on the upload page, it lets the browser
    upload. Uploads need an approved device, as the trust's policy says."""
    from services.intake import devices
    from services.intake import domain as intake

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
