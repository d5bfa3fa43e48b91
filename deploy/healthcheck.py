"""Container health checks for the Safepost image (compose runs them; exit 0 = healthy).

``healthcheck.py http <url>``: the api answers 200 (``/healthz`` under its prefix).
``healthcheck.py worker <service>``: the service's queue exists and has a consumer,
i.e. a worker (this one or a sibling replica) is connected and consuming.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def check_http(url: str) -> None:
    with urllib.request.urlopen(url, timeout=5) as response:
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status}")


def check_worker(service: str) -> None:
    from kombu.connection import Connection

    with Connection(os.environ["AMQP_URL"], connect_timeout=5) as conn:  # type: ignore[no-untyped-call]
        channel = conn.channel()
        _, _, consumers = channel.queue_declare(queue=service, passive=True)
        if consumers < 1:
            raise SystemExit(f"queue {service} has no consumer")


def main(argv: list[str]) -> None:
    match argv:
        case ["http", url]:
            check_http(url)
        case ["worker", service]:
            check_worker(service)
        case _:
            raise SystemExit("usage: healthcheck.py http <url> | worker <service>")


if __name__ == "__main__":
    main(sys.argv[1:])
