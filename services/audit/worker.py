"""The audit worker: binds ``#`` and records every envelope in the chain."""

from __future__ import annotations

from services.audit.bootstrap import (
    QUEUE_KEYS,
    SERVICE,
    envelope_handler,
    handler_map,
    real_ports,
)
from shared import runner

SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handlers=handler_map,
    queue_keys=QUEUE_KEYS,
    fallback=envelope_handler,  # every envelope, known type or not
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
