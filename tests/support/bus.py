"""In-memory Publishers: one fake whose broker can be up, down, or go down."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from shared import contracts


class InMemoryBus:
    """A Publisher that keeps what it was given, for assertions.

    ``up=False``: the broker is down (every publish raises ConnectionError) until
    ``up`` is set again. ``works=n``: the first ``n`` publishes succeed, then the
    broker is down. ``delay``: each publish takes that long (a slow broker, for
    races); publishes from several threads are safe.
    """

    def __init__(
        self, up: bool = True, works: int | None = None, delay: float = 0.0
    ) -> None:
        self.up = up
        self.works = works
        self.delay = delay
        self.published: list[contracts.Envelope] = []
        self._lock = threading.Lock()

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            if self.works is not None:
                if self.works <= 0:
                    self.up = False
                else:
                    self.works -= 1
            if not self.up:
                raise ConnectionError("broker unavailable")
            self.published.extend(envelopes)

    def messages(
        self, cls: type[contracts.Message] | None = None
    ) -> list[contracts.Message]:
        out = [contracts.parse(e) for e in self.published]
        return [m for m in out if cls is None or isinstance(m, cls)]

    def types(self) -> list[str]:
        return [e.type for e in self.published]

    def ids(self) -> list[str]:
        return [e.id for e in self.published]


class FailingBus(InMemoryBus):
    """A Publisher whose broker is down."""

    def __init__(self) -> None:
        super().__init__(up=False)
