"""Dead-letter queues: list what failed and why, and replay it to its own service.

``python -m shared.dlq list SERVICE`` and ``python -m shared.dlq replay SERVICE`` (what
``make dlq`` / ``make replay-dlq SERVICE=x`` run) read ``AMQP_URL``. A replayed message
goes back to ``<service>``'s queue only (default exchange, routing key = queue name), so
other services bound to its type never see it twice; it keeps its id, so the service's
idempotent handler recognises anything it already did.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from kombu.exceptions import ChannelError

from shared import bus

logger = logging.getLogger(__name__)

OUR_HEADERS = "x-safepost-"


def messages(url: str, service: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Up to ``limit`` messages of ``<service>.dlq`` (left in place) and their cause."""
    out: list[dict[str, Any]] = []
    with bus.connect(url) as conn:
        channel = conn.channel()
        held = []
        for _ in range(min(_depth(channel, service), limit)):
            msg = channel.basic_get(f"{service}.dlq", no_ack=False)
            if msg is None:
                break
            held.append(msg)
            out.append(_describe(msg))
        for msg in held:  # memory:// would drop them on close, so say it explicitly
            channel.basic_reject(msg.delivery_tag, requeue=True)
        channel.close()
    return out


def replay(url: str, service: str, limit: int | None = None) -> int:
    """Move what is in ``<service>.dlq`` now back to ``<service>``; return how many.

    Each message is confirmed on the service's queue before it leaves the DLQ; if the
    queue is gone (unroutable) the message stays and ``UnroutableError`` rises.
    """
    moved = 0
    publisher = bus.KombuPublisher(url)
    try:
        with bus.connect(url) as conn:
            channel = conn.channel()
            count = _depth(channel, service)  # not what fails again while we replay
            for _ in range(count if limit is None else min(count, limit)):
                msg = channel.basic_get(f"{service}.dlq", no_ack=False)
                if msg is None:
                    break
                try:
                    _send_back(publisher, service, msg)
                except BaseException:
                    channel.basic_reject(msg.delivery_tag, requeue=True)
                    raise
                channel.basic_ack(msg.delivery_tag)
                moved += 1
            channel.close()
    finally:
        publisher.close()
    logger.info("replayed %d message(s) from %s.dlq", moved, service)
    return moved


def _depth(channel: Any, service: str) -> int:
    """How many messages ``<service>.dlq`` holds (ChannelError if there is none)."""
    _, count, _ = channel.queue_declare(queue=f"{service}.dlq", passive=True)
    return int(count)


def _send_back(publisher: bus.KombuPublisher, service: str, msg: Any) -> None:
    properties = _properties(msg)
    headers = {k: v for k, v in _headers(msg).items() if not k.startswith(OUR_HEADERS)}
    headers["x-safepost-replays"] = int(_headers(msg).get("x-safepost-replays", 0)) + 1
    publisher.send(
        _body(msg),
        exchange=bus.default_exchange(),  # straight to the service's queue, no other
        routing_key=service,
        headers=headers,
        message_id=properties.get("message_id"),
        correlation_id=properties.get("correlation_id"),
        type=properties.get("type"),
    )


def _describe(msg: Any) -> dict[str, Any]:
    headers = _headers(msg)
    return {
        "message_id": _properties(msg).get("message_id"),
        "type": _properties(msg).get("type"),
        "error": headers.get("x-safepost-error") or _death_reason(headers),
        "detail": headers.get("x-safepost-detail", ""),
        "failed_at": headers.get("x-safepost-failed-at", ""),
        "headers": headers,
        "body": _body(msg),
    }


def _death_reason(headers: dict[str, Any]) -> str:
    """Dead-lettered by the broker itself (e.g. the delivery limit): its reason."""
    deaths = headers.get("x-death") or []
    return f"broker:{deaths[0].get('reason', '?')}" if deaths else "?"


# py-amqp and kombu's virtual (memory://) channels return different message objects.
def _properties(msg: Any) -> dict[str, Any]:
    return dict(getattr(msg, "properties", None) or {})


def _headers(msg: Any) -> dict[str, Any]:
    headers = getattr(msg, "headers", None)
    if headers is None:
        headers = _properties(msg).get("application_headers")
    return dict(headers or {})


def _body(msg: Any) -> bytes:
    body = msg.body
    return body if isinstance(body, bytes) else str(body).encode()


EMBEDDED = (
    "In the embedded mode (memory://) the dead-letter queues live inside the running "
    "`safepost run` process and cannot be read from another one: they are listed in "
    "its log. Use RabbitMQ (AMQP_URL) for anything real."
)


def run(action: str, service: str, url: str | None) -> int:
    """``list`` prints one line per message (id, type, error, time, detail, tabs
    between); ``replay`` moves them back. Exit status: 0, 1 (the broker said no),
    2 (no broker this process can reach)."""
    if not url or bus.is_memory(url):
        print(EMBEDDED, file=sys.stderr)
        return 2
    try:
        if action == "replay":
            print(f"replayed {replay(url, service)} message(s) to {service}")
            return 0
        found = messages(url, service)
    except ChannelError as exc:
        if "NOT_FOUND" in str(exc) or "404" in str(exc):
            print(f"{service}.dlq does not exist: nothing was ever dead-lettered there")
            return 0
        print(f"{service}.dlq: {exc}", file=sys.stderr)
        return 1
    for item in found:
        print("\t".join(_one_line(item[k]) for k in FIELDS))
    return 0


FIELDS = ("message_id", "type", "error", "failed_at", "detail")


def _one_line(value: Any) -> str:
    """A field on one line (a traceback's detail is split over many otherwise)."""
    return " | ".join(str(value or "").split("\n")).replace("\t", " ")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``list SERVICE`` prints id, type, error and detail; ``replay SERVICE``."""
    parser = argparse.ArgumentParser(prog="python -m shared.dlq", description=__doc__)
    parser.add_argument("action", choices=["list", "replay"])
    parser.add_argument("service")
    args = parser.parse_args(argv)
    return run(args.action, args.service, os.environ.get("AMQP_URL"))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
