"""Approval's worker: consumes the lifecycle messages and its own decisions."""

from __future__ import annotations

from services.approval.bootstrap import SERVICE, handler_map, real_ports
from shared import bus, logs
from shared.config import Settings


def main() -> None:
    settings = Settings.from_env(SERVICE)
    logs.configure(SERVICE, settings.log_level)
    bus.run_worker(
        settings.amqp_url,
        SERVICE,
        handler_map(real_ports(settings)),
        prefetch=settings.prefetch,
    )


if __name__ == "__main__":
    main()
