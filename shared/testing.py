"""Small working fakes of the shared ports, for unit tests and the dispatch tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from shared import contracts
from shared.storage import MemoryBlobStore

# The in-memory store is a real implementation (the CLI's one-shot mode uses it).
InMemoryBlobStore = MemoryBlobStore


def reset_memory_broker() -> None:
    """Forget every exchange, binding and queued message of kombu's ``memory://``.

    Its state is process-wide, so tests that assert on routing start clean.
    """
    from kombu.transport import memory

    memory.Transport.global_state.clear()  # type: ignore[no-untyped-call]
    memory.Channel.queues.clear()
    memory.Channel.events.clear()


def claim_rows(
    rows: Mapping[str, contracts.Envelope],
    sent: set[str],
    publish: Callable[[contracts.Envelope], bool],
    limit: int = 100,
    only: Sequence[str] | None = None,
) -> tuple[int, bool]:
    """``Outbox.claim`` over a dict of rows (in insertion order) and a set of sent ids,
    for fakes: one thread, so nothing else holds a row."""
    done = 0
    for envelope_id, envelope in list(rows.items()):
        if done >= limit:
            break
        if envelope_id in sent or (only is not None and envelope_id not in only):
            continue
        if not publish(envelope):
            return done, True
        sent.add(envelope_id)
        done += 1
    return done, False
