"""The ``safepost`` command line.

Commands use the embedded store in ``$SAFEPOST_DATA_DIR`` (default ``./var``) unless
production settings (``AMQP_URL``, ``DATABASE_URL``/``<SERVICE>_DATABASE_URL``,
``S3_ENDPOINT``) are given in the environment.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared import logs
from shared.config import SERVICES, Settings
from shared.errors import ConfigError, DomainError


def _ports(service: str) -> Any:
    from safepost.embedded import SPECS

    return SPECS[service].make_ports(Settings.from_env(service))


def _users() -> Any:
    from safepost.identity.store import UserStore

    return UserStore.open(Settings.from_env("identity").database_url)


def cmd_run(args: argparse.Namespace) -> int:
    import os

    from safepost import demo, embedded
    from safepost.sandboxes import run as sandboxes_run

    logs.configure("safepost", args.log_level)
    url = f"http://{args.host}:{args.port}"
    sandboxes = None
    if not (args.no_seed or args.no_sandboxes):
        sandboxes = sandboxes_run.start(demo.SCHOOLS)
    env = dict(os.environ)
    env.setdefault("PUBLIC_URL", url)  # Instagram's sandbox fetches images from it
    try:
        system = embedded.build(env=env, sandboxes=sandboxes)
    except BaseException:
        if sandboxes is not None:
            sandboxes.stop()
        raise
    publish_root = (
        system.settings["publishing"].publish_root or system.data_dir / "published"
    )
    created = [] if args.no_seed else demo.seed(system.ports, publish_root, sandboxes)
    print(f"\nSafepost (embedded) at {url}  data: {system.data_dir}", flush=True)
    if created:
        path = demo.write_credentials(system.data_dir, created)
        print(
            "Demo accounts (passwords are shown once; also saved to "
            f"{path}):\n{demo.format_credentials(created)}",
            flush=True,
        )
    elif not args.no_seed:
        print(
            "Demo accounts exist already: see "
            f"{system.data_dir / 'demo-credentials.txt'}",
            flush=True,
        )
    if not args.no_seed:
        codes = demo.demo_device_codes(system.ports["intake"])
        print(
            "Device enrolment codes for the demo teachers' school iPads (enter once on "
            "the upload page; valid 15 minutes; admins issue new ones on "
            f"{url}/intake/devices):",
            flush=True,
        )
        for owner, code in codes.items():
            print(f"  {owner}: {code}", flush=True)
    if sandboxes is not None:
        print(demo.format_sandboxes(sandboxes), flush=True)
    print(f"Published posts appear under {publish_root}\n", flush=True)
    embedded.serve(system, args.host, args.port)
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from safepost import demo, portal

    settings = Settings.from_env("publishing")
    ports = {
        "consent": _ports("consent"),
        "publishing": _ports("publishing"),
        "identity": portal.real_ports(Settings.from_env("identity")),
    }
    root = settings.publish_root or settings.data_dir / "published"
    created = demo.seed(ports, root)
    if created:
        path = demo.write_credentials(settings.data_dir, created)
        print(
            f"Demo accounts (also saved to {path}):\n{demo.format_credentials(created)}"
        )
    else:
        print("The demo trust is already seeded.")
    return 0


def cmd_redact(args: argparse.Namespace) -> int:
    from services.redaction.offline import redact_file

    decide = None
    if args.school:
        decide = _consent_decider(args.school, args.purpose, args.platform)
    report = redact_file(
        Path(args.input),
        Path(args.output),
        Path(args.report) if args.report else None,
        decide=decide,
    )
    faces = report.get("faces", [])
    masked = sum(1 for f in faces if f.get("masked"))
    print(f"{args.output}: {len(faces)} face(s) found, {masked} masked")
    return 0


def _consent_decider(school: str, purpose: str, platforms: list[str]) -> Any:
    """Consent's own decision for one photo of ``school`` (the worker's exact rules)."""
    from services.consent import admin

    ports = _ports("consent")
    if school not in {s.slug for s in admin.list_schools(ports)}:
        raise DomainError(f"no school {school}; add it with `safepost schools add`")

    scopes: list[tuple[str, str | None]] = [(purpose, p) for p in platforms]
    scopes = scopes or [(purpose, None)]

    def decide(event: Any) -> Any:
        event = event.model_copy(update={"school_id": school})
        return admin.decide(ports, event, scopes)

    return decide


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from services.audit import admin

    result = admin.verify_chain(_ports("audit"))
    print(json.dumps(asdict(result), default=str))
    return 0 if result.ok else 1


def cmd_users_add(args: argparse.Namespace) -> int:
    from safepost.identity.store import RoleGrant

    grants = [RoleGrant.parse(r) for r in args.role]
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if password != getpass.getpass("Again: "):
            print("passwords differ", file=sys.stderr)
            return 2
    _users().add(args.username, args.name or args.username, password, grants)
    print(f"added {args.username} with {', '.join(args.role) or 'no roles'}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    for user in _users().list():
        state = "" if user["active"] else " (inactive)"
        print(
            f"{user['username']}{state}\t{user['display_name']}\t"
            f"{', '.join(user['roles'])}"
        )
    return 0


def cmd_users_grant(args: argparse.Namespace) -> int:
    from safepost.identity.store import RoleGrant

    _users().grant(args.username, RoleGrant.parse(args.role))
    print(f"granted {args.role} to {args.username}")
    return 0


def cmd_schools_add(args: argparse.Namespace) -> int:
    from services.consent import admin

    created = admin.add_school(_ports("consent"), args.slug, args.name)
    print(f"{'added' if created else 'already present:'} {args.slug}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    for service in args.services or [*SERVICES, "identity"]:
        if service == "identity":
            _users()
        else:
            _ports(service)
        print(f"migrated {service}")
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from shared import dlq

    return dlq.run(args.action, args.service, Settings.from_env(args.service).amqp_url)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="safepost", description="Safepost: consent-checked school social posting."
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run every service in one process (embedded)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument(
        "--no-seed", action="store_true", help="do not seed the demo trust"
    )
    run.add_argument(
        "--no-sandboxes",
        action="store_true",
        help="do not start the platform sandboxes (the demo's social accounts then "
        "point nowhere)",
    )
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=cmd_run)

    redact = sub.add_parser(
        "redact", help="redact one photo file exactly as the service does"
    )
    redact.add_argument("input")
    redact.add_argument("output")
    redact.add_argument("--report", help="write the face report (JSON) here")
    redact.add_argument(
        "--school",
        help="mask by this school's consent decisions (default: mask every face)",
    )
    redact.add_argument("--purpose", default="social_media")
    redact.add_argument(
        "--platform",
        action="append",
        default=[],
        help="target platform, repeatable (consent must hold for every one)",
    )
    redact.set_defaults(func=cmd_redact)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    audit.add_parser("verify", help="check the hash chain").set_defaults(
        func=cmd_audit_verify
    )

    users = sub.add_parser("users", help="staff accounts").add_subparsers(
        dest="action", required=True
    )
    add = users.add_parser("add", help="add a staff account")
    add.add_argument("username")
    add.add_argument("--name", help="display name")
    add.add_argument(
        "--role",
        action="append",
        default=[],
        help="ROLE@SCHOOL, repeatable; ROLE one of teacher, approver, "
        "it_auditor, admin; SCHOOL a slug or * (trust-wide)",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input",
    )
    add.set_defaults(func=cmd_users_add)
    users.add_parser("list", help="list staff accounts").set_defaults(
        func=cmd_users_list
    )
    grant = users.add_parser("grant", help="grant a role")
    grant.add_argument("username")
    grant.add_argument("role", help="ROLE@SCHOOL")
    grant.set_defaults(func=cmd_users_grant)

    schools = sub.add_parser("schools", help="schools").add_subparsers(
        dest="action", required=True
    )
    sadd = schools.add_parser("add", help="add a school")
    sadd.add_argument("slug")
    sadd.add_argument("--name", required=True)
    sadd.set_defaults(func=cmd_schools_add)

    sub.add_parser("seed-demo", help="seed the demo trust (idempotent)").set_defaults(
        func=cmd_seed_demo
    )

    mig = sub.add_parser("migrate", help="bring every database schema up to date")
    mig.add_argument("services", nargs="*")
    mig.set_defaults(func=cmd_migrate)

    dlq = sub.add_parser("dlq", help="inspect or replay a service's dead-letter queue")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("service", choices=list(SERVICES))
    dlq.set_defaults(func=cmd_dlq)

    from safepost.commands import publishing, register_all

    register_all(sub)
    publishing.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (DomainError, ConfigError, FileNotFoundError) as exc:
        print(f"safepost: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
