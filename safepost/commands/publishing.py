"""``safepost publishing status POST_ID`` (each account's state, attempts, reason
and live URL) and ``safepost publishing retry POST_ID ACCOUNT`` (send a failed or
waiting delivery again now: the running system's delivery loop picks it up)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

COLUMNS = ("account", "platform", "state", "attempts", "reason", "url / next try")


def _ports() -> Any:
    from services.publishing.bootstrap import SERVICE, real_ports
    from shared.config import Settings

    return real_ports(Settings.from_env(SERVICE))


def _row(delivery: Any) -> dict[str, Any]:
    retry_at = delivery.next_attempt_at
    return {
        "account": delivery.account_id,
        "platform": delivery.target,
        "state": delivery.status,
        "attempts": delivery.attempts,
        "reason": delivery.reason.split(":", 1)[0],
        "detail": delivery.detail,
        "url": delivery.url if delivery.url.startswith(("http://", "https://")) else "",
        "next_attempt_at": retry_at.isoformat() if retry_at else None,
        "live_at": delivery.live_at.isoformat() if delivery.live_at else None,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            r["account"],
            r["platform"] or "-",
            r["state"],
            str(r["attempts"]),
            r["reason"] or "-",
            r["url"]
            or (f"next try {r['next_attempt_at']}" if r["next_attempt_at"] else "-"),
        ]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(5)]
    lines = []
    for cell in [list(COLUMNS), *cells]:
        head = "  ".join(v.ljust(w) for v, w in zip(cell[:5], widths, strict=True))
        lines.append(f"{head}  {cell[5]}".rstrip())
    details = [f"  {r['account']}: {r['detail']}" for r in rows if r["detail"]]
    if details:
        lines += ["", "What the platforms said:", *details]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    found = _ports().deliveries.recent(post_id=args.post_id, limit=1000)
    rows = sorted((_row(d) for d in found), key=lambda r: r["account"])
    if args.json:
        print(json.dumps({"post_id": args.post_id, "deliveries": rows}, indent=2))
        return 0
    if not rows:
        print(
            f"post {args.post_id}: nothing to deliver yet (not approved, consent not "
            "answered yet, or an unknown post)"
        )
        return 1
    print(f"post {args.post_id}")
    print(_table(rows))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from services.publishing import delivery
    from services.publishing.bootstrap import delivery_engine

    try:
        again = delivery.retry(delivery_engine(_ports()), args.post_id, args.account)
    except delivery.DeliveryStateError as exc:
        print(f"safepost: {exc}", file=sys.stderr)
        return 2
    print(
        f"post {again.post_id} on {again.account_id}: {again.status} (due now; the "
        "running system's delivery loop sends it)"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    actions = sub.add_parser(
        "publishing", help="where a post has gone, per account; retry a delivery"
    ).add_subparsers(dest="action", required=True)
    status = actions.add_parser(
        "status", help="each target account's state, attempts, reason and live URL"
    )
    status.add_argument("post_id")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)
    retry = actions.add_parser(
        "retry", help="send a failed or waiting delivery again now"
    )
    retry.add_argument("post_id")
    retry.add_argument("account", help="the account id, e.g. oakfield-facebook")
    retry.set_defaults(func=cmd_retry)
