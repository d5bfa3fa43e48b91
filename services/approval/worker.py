"""Approval's worker: consumes the lifecycle messages and its own decisions."""

from __future__ import annotations

from services.approval.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import bus, runner
from shared.config import Settings


def build_worker(settings: Settings, ports: Ports) -> bus.Worker:
    return runner.standard_worker(settings, SERVICE, handler_map(ports))


def main() -> None:
    runner.run(SERVICE, real_ports, build_worker)


if __name__ == "__main__":
    main()
