"""``safepost devices ...`` (IT's device register), ``safepost device login`` and
``safepost upload`` (the device uploader)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import Any

from safepost import uploader


def _intake() -> Any:
    from safepost.embedded import SPECS
    from shared.config import Settings

    return SPECS["intake"].make_ports(Settings.from_env("intake"))


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _show(device: Any) -> str:
    return (
        f"{device.device_id}\t{device.school_id}\t{device.owner}\t{device.kind}\t"
        f"{device.status}\t{device.name}"
    )


def cmd_add(args: argparse.Namespace) -> int:
    from safepost.identity.store import UserStore
    from services.intake import handlers as devices
    from shared.config import Settings

    owner = args.owner.strip().lower()
    if not UserStore.open(Settings.from_env("identity").database_url).exists(owner):
        print(f"safepost: no staff account {owner}", file=sys.stderr)
        return 2
    device = devices.register(
        _intake(),
        school=args.school,
        owner=owner,
        kind=args.kind,
        name=args.name or "",
        by=_actor(),
    )
    print(_show(device))
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from services.intake import handlers as devices

    print(_show(devices.approve(_intake(), args.device_id, _actor())))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from services.intake import handlers as devices

    print(_show(devices.revoke(_intake(), args.device_id, _actor(), args.reason)))
    return 0


def cmd_enrol_code(args: argparse.Namespace) -> int:
    from services.intake import handlers as devices

    code, expires = devices.enrolment_code(_intake(), args.device_id, _actor())
    print(f"{code}\t(one use; expires {expires.isoformat(timespec='seconds')})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ports = _intake()
    for device in ports.register.listing({args.school} if args.school else None):
        print(_show(device))
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    """Exchange the enrolment code for this device's token; keep it 0600."""
    path = Path(args.config) if args.config else uploader.default_config_path()
    server = uploader.Server(args.server)
    try:
        token, expires = _sign_in(server, args.user, args.password_stdin)
        server.staff_token = token
        answer = server.enrol(args.code)
    except uploader.UploaderError as exc:
        print(f"safepost: {exc}", file=sys.stderr)
        return 2
    finally:
        server.close()
    config = uploader.DeviceConfig(
        server=server.base,
        device_id=answer["device_id"],
        device_token=answer["token"],
        kind=answer.get("kind", ""),
        school=answer.get("school", ""),
        owner=answer.get("owner", ""),
        staff_token=token,
        staff_token_expires=expires,
    )
    uploader.save_config(path, config)
    print(
        f"enrolled device {config.device_id} ({config.kind}, {answer.get('status')}) "
        f"for {config.owner} at {config.school}; token saved to {path}"
    )
    return 0


def _staff_token(
    server: uploader.Server, config: uploader.DeviceConfig, args: argparse.Namespace
) -> None:
    if not args.password_stdin and config.staff_token_valid(time.time()):
        server.staff_token = config.staff_token
        return
    token, expires = _sign_in(server, args.user or config.owner, args.password_stdin)
    server.staff_token = token
    config.staff_token, config.staff_token_expires = token, expires


def _sign_in(
    server: uploader.Server, user: str | None, password_stdin: bool
) -> tuple[str, float]:
    """Staff sign-in on the portal; the password is read, sent once, never stored."""
    username = (user or "").strip().lower()
    if not username:
        raise uploader.UploaderError("say who you are with --user")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {username}: ")
    return server.sign_in(username, password)


def cmd_upload(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else uploader.default_config_path()
    try:
        config = uploader.load_config(path)
        server = uploader.Server(config.server, device_token=config.device_token)
        _staff_token(server, config, args)
        uploader.save_config(path, config)
        outcome = uploader.upload(
            server,
            config,
            [Path(p) for p in args.paths],
            caption=args.caption,
            school=args.school,
            accounts=[a for v in args.accounts for a in v.split(",") if a.strip()],
            purpose=args.purpose,
            publish_on=args.publish_on,
            delete_after_upload=args.delete_after_upload,
            out=None if args.quiet else sys.stderr,
            save=lambda c: uploader.save_config(path, c),
        )
    except uploader.UploaderError as exc:
        print(f"safepost: {exc}", file=sys.stderr)
        return 2
    finally:
        if "server" in locals():
            server.close()
    for problem in outcome.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(
        f"uploaded {len(outcome.uploaded)}, already held {len(outcome.skipped)}, "
        f"deleted {len(outcome.deleted)} file(s) (with sidecars), kept "
        f"{len(outcome.kept)}; deletions confirmed {len(outcome.confirmed)}"
        + (
            f", {len(outcome.unconfirmed)} to confirm next run"
            if outcome.unconfirmed
            else ""
        )
        + (f"; posts {', '.join(outcome.posts)}" if outcome.posts else "")
    )
    return 1 if outcome.problems else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    devices = sub.add_parser(
        "devices", help="IT: the device register (add, approve, revoke, enrol-code)"
    ).add_subparsers(dest="action", required=True)
    add = devices.add_parser("add", help="register a device (pending approval)")
    add.add_argument("--school", required=True)
    add.add_argument("--owner", required=True, help="the staff member's username")
    add.add_argument("--kind", required=True, choices=["personal", "trust"])
    add.add_argument("--name", help="e.g. 'Sam's iPhone'")
    add.set_defaults(func=cmd_add)
    approve = devices.add_parser("approve", help="approve a device for uploads")
    approve.add_argument("device_id")
    approve.set_defaults(func=cmd_approve)
    revoke = devices.add_parser("revoke", help="revoke a device (takes effect at once)")
    revoke.add_argument("device_id")
    revoke.add_argument("--reason", default="")
    revoke.set_defaults(func=cmd_revoke)
    code = devices.add_parser(
        "enrol-code", help="a one-time enrolment code (15 minutes)"
    )
    code.add_argument("device_id")
    code.set_defaults(func=cmd_enrol_code)
    listing = devices.add_parser("list", help="list devices")
    listing.add_argument("--school")
    listing.set_defaults(func=cmd_list)

    device = sub.add_parser("device", help="this device").add_subparsers(
        dest="action", required=True
    )
    login = device.add_parser(
        "login", help="enrol this device with the code IT gave you"
    )
    login.add_argument("--server", required=True, help="e.g. https://safepost.example")
    login.add_argument("--code", required=True)
    login.add_argument("--user", required=True, help="your username (the owner's)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    login.add_argument(
        "--config", help="config file (default: ~/.config/safepost/device.json)"
    )
    login.set_defaults(func=cmd_login)

    up = sub.add_parser(
        "upload",
        help="upload photos from this device; on a personal device the originals are "
        "deleted once the server's receipt matches",
    )
    up.add_argument("paths", nargs="+", metavar="PATH")
    up.add_argument("--caption", required=True)
    up.add_argument("--school", help="default: the device's school")
    up.add_argument(
        "--accounts",
        action="append",
        default=[],
        required=True,
        help="target account ids (repeatable or comma-separated)",
    )
    up.add_argument("--purpose", default="social_media")
    up.add_argument("--publish-on", help="YYYY-MM-DD")
    up.add_argument(
        "--delete-after-upload",
        action="store_true",
        help="also delete on a trust-owned device (a personal device always deletes)",
    )
    up.add_argument("--user", help="your username (default: the device's owner)")
    up.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    up.add_argument(
        "--config", help="config file (default: ~/.config/safepost/device.json)"
    )
    up.add_argument("--quiet", action="store_true", help="no progress bar")
    up.set_defaults(func=cmd_upload)
