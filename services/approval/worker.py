"""Approval's worker: consumes the lifecycle messages and its own decisions."""

from __future__ import annotations

from services.approval.bootstrap import SERVICE, handler_map, real_ports
from shared import contracts, runner

SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handles=(
        contracts.PostSubmitted,
        contracts.PhotoRedacted,
        contracts.PhotoRefused,
        contracts.RecordDecision,
        contracts.ReviseRedaction,
        contracts.ConsentChanged,
        contracts.PublicationHeld,
        contracts.PostFitChecked,
        contracts.DeliveryUpdated,
        contracts.PostPublished,
        contracts.PublishFailed,
    ),
    handlers=handler_map,
    background=lambda ports: [ports.relay] if ports.relay else [],
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
