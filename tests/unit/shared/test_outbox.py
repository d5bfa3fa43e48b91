"""The shared outbox relay and the background loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from shared import contracts, outbox
from shared.testing import claim_rows
from tests.support.bus import InMemoryBus


class ListOutbox:
    def __init__(self, envelopes: list[contracts.Envelope]) -> None:
        self.rows = {e.id: e for e in envelopes}
        self.sent: set[str] = set()

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        return [e for i, e in self.rows.items() if i not in self.sent][:limit]

    def claim(
        self,
        publish: Callable[[contracts.Envelope], bool],
        limit: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, bool]:
        return claim_rows(self.rows, self.sent, publish, limit, only)


def rejected(n: int) -> contracts.Envelope:
    event = contracts.PostRejected(post_id=f"p{n}", school_id="oak", reason="blurry")
    return contracts.seal(event, producer="test")


def test_the_relay_stops_at_the_first_failure_and_sends_the_rest_later_once_each():
    box = ListOutbox([rejected(n) for n in range(5)])
    down = InMemoryBus(works=2)  # takes two, then the broker is down
    up = InMemoryBus()

    first = outbox.relay(box, down, batch=2)
    second = outbox.relay(box, up, batch=2)
    third = outbox.relay(box, up, batch=2)

    assert (first, second, third) == (2, 3, 0)
    ids = [e.id for e in down.published + up.published]
    assert sorted(ids) == sorted(box.rows) and len(set(ids)) == 5


def test_a_failing_job_is_retried_and_the_loop_stops_when_asked():
    stop = threading.Event()
    calls: list[int] = []

    def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        if len(calls) == 3:
            stop.set()

    outbox.every(0.001, job, stop, "test job")

    assert len(calls) == 3
