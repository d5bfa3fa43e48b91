"""What the delivery loop works with: its policy (retries, lease, consent freshness)
and its engine (publishing's unit of work for every change, the read side for what is
due, the platforms' adapters)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.publishing import domain
from services.publishing.platforms.base import Adapter, Credentials, Destination
from services.publishing.ports import (
    AccountDirectory,
    Approvals,
    DeliveryLog,
    SiteRegister,
    Takedowns,
    Tokens,
    Unit,
)
from shared.storage import BlobStore


class SimulatedCrashError(Exception):
    """Raised by a test's or benchmark's crash hook: the worker 'dies' here."""


@dataclass(frozen=True)
class Policy:
    retry_seconds: tuple[int, ...] = (60, 300, 1800)  # transient: then failed
    lease: timedelta = timedelta(minutes=2)  # a ``sending`` older than this is lost
    reconcile_seconds: tuple[int, ...] = (5, 30, 120)  # looks for a lost create
    gate_fresh: timedelta = timedelta(minutes=10)  # consent checked this recently
    wait_seconds: int = 60  # how often a waiting delivery looks again
    rate_limit_fallback: int = 900  # a 429 without a reset time

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Policy:
        """PUBLISH_RETRY_SECONDS=60,300,1800  PUBLISH_LEASE_SECONDS=120 ..."""

        def seconds(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
            raw = env.get(name, "")
            return tuple(int(p) for p in raw.split(",") if p.strip()) or default

        base = cls()
        return cls(
            retry_seconds=seconds("PUBLISH_RETRY_SECONDS", base.retry_seconds),
            lease=timedelta(
                seconds=int(env.get("PUBLISH_LEASE_SECONDS", base.lease.seconds))
            ),
            reconcile_seconds=seconds(
                "PUBLISH_RECONCILE_SECONDS", base.reconcile_seconds
            ),
            gate_fresh=timedelta(
                seconds=int(env.get("PUBLISH_GATE_SECONDS", base.gate_fresh.seconds))
            ),
            wait_seconds=int(env.get("PUBLISH_WAIT_SECONDS", base.wait_seconds)),
        )

    @property
    def every(self) -> timedelta:
        """How long a waiting delivery waits before it looks again."""
        return timedelta(seconds=self.wait_seconds)


@dataclass(frozen=True)
class Engine:
    """What the delivery loop needs (built from publishing's ports). Every change is
    made in a fresh ``unit`` (one per claim, one per settle); the repositories here
    are the read side (what is due, the account, its token), and the platforms are
    only ever called outside any transaction."""

    unit: Callable[[], Unit]
    accounts: AccountDirectory
    deliveries: DeliveryLog
    approvals: Approvals
    redacted: BlobStore
    platforms: Mapping[str, Adapter]
    destination: Callable[[domain.Account, Credentials | None], Destination]
    sites: SiteRegister | None = None
    tokens: Tokens | None = None
    takedowns: Takedowns | None = None
    media_url: Callable[[str], str | None] = lambda key: None
    policy: Policy = field(default_factory=Policy)
    now: Callable[[], datetime] = lambda: datetime.now().astimezone()
    # Tests and the benchmark: called between a platform's answer and the marker.
    crash_after_answer: Callable[[domain.Delivery], None] | None = None


@contextlib.contextmanager
def settling(engine: Engine) -> Iterator[Unit]:
    """One unit of work, committed when the block ends without an error (an error
    keeps none of its writes and emits nothing)."""
    with engine.unit() as unit:
        yield unit
        unit.commit()
