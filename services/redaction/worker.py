"""The redaction worker: detects, redacts and revises; sweeps expired originals;
relays what its use cases emitted while the broker was away.

Detection (``post.submitted``) is the slow part, so it has the main queue; what
finishes a photo (consent's answer, an approver's revision) takes the
``redaction.decisions`` lane, so a photo reaches its approver right after the
detection in hand instead of after the whole backlog of uploads. Closing a post
(published or rejected: its originals' retention clock starts) can wait, so it stays
on the main queue: on the lane it would double the lane's traffic, and the worker
takes one lane message per detection, so consent's answers fell behind
(benchmarks/pipeline.py: the lane held 17 messages at the end of a burst of 30).
"""

from __future__ import annotations

import threading

from services.redaction.bootstrap import (
    SERVICE,
    Ports,
    handler_map,
    real_ports,
    sweep_originals,
)
from shared import contracts, outbox, runner


def sweep_forever(ports: Ports, stop: threading.Event) -> None:
    """Every ``ports.sweep_seconds``: delete originals whose retention has passed."""
    outbox.every(
        ports.sweep_seconds, lambda: sweep_originals(ports), stop, "originals sweep"
    )


def background_tasks(ports: Ports) -> list[runner.Task]:
    tasks: list[runner.Task] = [lambda stop: sweep_forever(ports, stop)]
    if ports.relay is not None:
        tasks.append(ports.relay)
    return tasks


SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handles=(
        contracts.PostSubmitted,
        contracts.FacesDecided,
        contracts.ReviseRedaction,
        contracts.PostPublished,
        contracts.PostRejected,
    ),
    handlers=handler_map,
    background=background_tasks,
    lanes={"decisions": (contracts.FacesDecided, contracts.ReviseRedaction)},
    prefetch=1,  # CPU-bound: one photo at a time per process (docs/architecture.md)
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
