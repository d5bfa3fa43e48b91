"""The redaction worker: consumes post.submitted and faces.decided."""

from __future__ import annotations

from services.redaction.bootstrap import SERVICE, handler_map, real_ports
from shared import bus, logs
from shared.config import Settings


def main() -> None:
    settings = Settings.from_env(SERVICE)
    logs.configure(SERVICE, settings.log_level)
    bus.run_worker(
        settings.amqp_url, SERVICE, handler_map(real_ports(settings)), prefetch=1
    )  # CPU-bound: one post at a time (docs/architecture.md)


if __name__ == "__main__":
    main()
