"""A unit of work over in-memory repositories, for unit tests of use cases.

Emitted messages are sealed as the real one seals them (the cause is the message the
worker is handling) and published to the fake bus on commit; without a commit they are
dropped. The in-memory repositories are not rolled back: tests of atomicity use the
SQL unit of work (tests/unit/shared/test_uow.py).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from shared import bus, contracts


class FakeUnit:
    def __init__(self, publisher: Any, producer: str, **repositories: Any) -> None:
        self.publisher = publisher
        self.producer = producer
        self.__dict__.update(repositories)
        self.emitted: list[contracts.Envelope] = []
        self.commits = 0

    def __enter__(self) -> Self:
        self.emitted = []
        return self

    def emit(
        self,
        message: contracts.Message,
        *,
        actor: str | None = None,
        message_id: str | None = None,
    ) -> contracts.Envelope:
        envelope = contracts.seal(
            message,
            producer=self.producer,
            cause=bus.incoming(),
            index=len(self.emitted),
            actor=actor,
            message_id=message_id,
        )
        self.emitted.append(envelope)
        return envelope

    def commit(self) -> None:
        self.commits += 1
        self.publisher.publish(self.emitted)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.emitted = []
