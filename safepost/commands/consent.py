"""``safepost consent ...``: import and export pupils and consents, enrol, show."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.consent.bootstrap import Ports


def _ports() -> Ports:
    from services.consent.worker import SPEC
    from shared.config import Settings

    return SPEC.make_ports(Settings.from_env("consent"))


def cmd_import(args: argparse.Namespace) -> int:
    from services.consent import admin

    data = Path(args.file).read_bytes()
    report = admin.import_csv(
        _ports(), args.school, data, by=f"cli:{getpass.getuser()}", dry_run=args.dry_run
    )
    summary = report.as_dict()
    errors = summary.pop("errors")
    print(json.dumps(summary, indent=2))
    for error in errors:  # type: ignore[attr-defined]
        print(f"line {error['line']}: {error['message']}", file=sys.stderr)
    if errors:
        print("nothing was imported: fix the lines above", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from services.consent import admin

    text = admin.export_csv(_ports(), args.school)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8-sig")
    return 0


def cmd_enrol(args: argparse.Namespace) -> int:
    from services.consent import admin

    count = admin.enrol(
        _ports(),
        args.school,
        args.pupil_id,
        [Path(p) for p in args.photos],
        by=f"cli:{getpass.getuser()}",
    )
    print(f"{args.pupil_id}: {count} reference face(s) enrolled; photos not kept")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from services.consent import admin

    print(json.dumps(admin.show(_ports(), args.school, args.pupil_id), indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    consent = sub.add_parser("consent", help="pupils, consent and enrolment")
    commands = consent.add_subparsers(dest="consent_command", required=True)

    imp = commands.add_parser(
        "import", help="import pupils and consents from a CSV file (all or nothing)"
    )
    imp.add_argument("file")
    imp.add_argument("--school", required=True)
    imp.add_argument("--dry-run", action="store_true", help="report; change nothing")
    imp.set_defaults(func=cmd_import)

    exp = commands.add_parser("export", help="export pupils and consents as CSV")
    exp.add_argument("--school", required=True)
    exp.add_argument("--output", "-o", default="-")
    exp.set_defaults(func=cmd_export)

    enrol = commands.add_parser(
        "enrol", help="enrol a pupil from reference photos (one face each)"
    )
    enrol.add_argument("--school", required=True)
    enrol.add_argument("pupil_id")
    enrol.add_argument("photos", nargs="+")
    enrol.set_defaults(func=cmd_enrol)

    show = commands.add_parser("show", help="a pupil's consent in force and history")
    show.add_argument("--school", required=True)
    show.add_argument("pupil_id")
    show.set_defaults(func=cmd_show)
