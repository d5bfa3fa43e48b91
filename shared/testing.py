"""Small working fakes of the shared ports, for unit tests and the dispatch tests."""

from __future__ import annotations

from collections.abc import Sequence

from shared import contracts
from shared.storage import BlobNotFoundError, check_key


class InMemoryBus:
    """A Publisher that keeps what was published, for assertions."""

    def __init__(self) -> None:
        self.published: list[contracts.Envelope] = []

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        self.published.extend(envelopes)

    def messages(
        self, cls: type[contracts.Message] | None = None
    ) -> list[contracts.Message]:
        out = [contracts.parse(e) for e in self.published]
        return [m for m in out if cls is None or isinstance(m, cls)]


class FailingBus:
    """A Publisher whose broker is down."""

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        raise ConnectionError("broker unavailable")


class InMemoryBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self.blobs[check_key(key)] = bytes(data)
        self.content_types[key] = content_type

    def get(self, key: str) -> bytes:
        try:
            return self.blobs[check_key(key)]
        except KeyError:
            raise BlobNotFoundError(f"no blob {key}") from None

    def exists(self, key: str) -> bool:
        return check_key(key) in self.blobs

    def delete(self, key: str) -> None:
        self.blobs.pop(check_key(key), None)
        self.content_types.pop(key, None)

    def presigned_get(self, key: str, expires: int = 300) -> str | None:
        check_key(key)
        return None


def reset_memory_broker() -> None:
    """Forget every exchange, binding and queued message of kombu's ``memory://``.

    Its state is process-wide, so tests that assert on routing start clean.
    """
    from kombu.transport import memory

    memory.Transport.global_state.clear()  # type: ignore[no-untyped-call]
    memory.Channel.queues.clear()
    memory.Channel.events.clear()
