"""The delivery loop: each approved, consent-cleared post goes to each of its accounts
exactly once, and no failure is silent.

Per (post, account): ``pending -> sending -> live``; or ``waiting`` with a reason
(rate limited until the platform's reset time, retrying with back-off, the account
needs reconnecting, the site is not approved, consent being checked again), ``failed``
with the platform's own words, ``reconciling`` when an answer was lost, ``unconfirmed``
when a person must say whether it went live, ``held`` when consent changed.

The rules that make it exactly once (learnt the hard way by the open-source
schedulers):

- A delivery is claimed before the platform is called (one worker wins), and it is
  marked ``sending`` with the time; every state change and the messages it owes are
  written in one transaction (the outbox relays them).
- A create whose answer is lost (timeout, dropped connection, 5xx: the platform's
  ``AmbiguousError``), or a ``sending`` whose worker died between the platform's
  answer and the marker (older than the lease), is never retried blindly: the account's
  recent posts are searched for ours (its exact caption and number of images). Found:
  live. Still not there after a few looks: safe to send again. Several matches or no
  way to look: ``unconfirmed``, and a person decides.
- Bookkeeping after a success never triggers a retry: a failure there leaves the
  delivery ``sending``, which the lease turns into a reconciliation that finds it.
- Retries are scheduled (a time in the row), not slept in a worker, so they survive
  restarts.
- Before sending, the consent check that cleared the round must be fresh; an older one
  asks consent again (the final gate holds for posts that waited).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from PIL import Image

from services.publishing import domain, limits
from services.publishing.platforms.base import (
    Adapter,
    AmbiguousError,
    AuthError,
    Credentials,
    Destination,
    LivePost,
    Media,
    PermanentError,
    PlatformError,
    RateLimitedError,
    TransientError,
    find_ours,
)
from services.publishing.ports import (
    AccountDirectory,
    Approval,
    Approvals,
    DeliveryLog,
    SiteRegister,
    Takedowns,
    Tokens,
)
from shared import contracts, metrics
from shared.storage import BlobNotFoundError, BlobStore

logger = logging.getLogger(__name__)

NO_TOKEN_PLATFORMS = ("folder",)  # a folder needs no token
RESEND = "resend"  # sent again after its answer was lost and it was not found
KEYED_PLATFORMS = ("folder", "webhook")  # take the post id as an idempotency key


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


@dataclass(frozen=True)
class Engine:
    """What the delivery loop needs (built from publishing's ports)."""

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


# --- scheduling ------------------------------------------------------------------


def schedule(
    event: contracts.PostApproved, deliveries: DeliveryLog, now: datetime
) -> list[contracts.Message]:
    """Consent cleared the round: every account not live yet gets a pending delivery
    (due now); what the pages are told."""
    out: list[contracts.Message] = []
    for account_id in event.accounts:
        marker = deliveries.get(event.post_id, account_id)
        if marker is not None and marker.status in (domain.LIVE, domain.SENDING):
            continue
        if marker is not None and marker.status == domain.RECONCILING:
            continue
        if (
            marker is not None
            and marker.status == domain.PENDING
            and marker.round == event.round
        ):
            out.append(updated(marker))  # the same answer again: the same words
            continue
        pending = domain.Delivery(
            event.post_id,
            account_id,
            event.school_id,
            domain.PENDING,
            now,
            target=marker.target if marker else "",
            round=event.round,
            attempts=marker.attempts if marker else 0,
            next_attempt_at=now,
        )
        deliveries.record(pending)
        out.append(updated(pending))
    return out


def run_due(engine: Engine, limit: int = 50) -> int:
    """Work on every delivery that is due; the number worked on."""
    now = engine.now()
    done = 0
    for delivery in engine.deliveries.due(now, engine.policy.lease, limit):
        try:
            step(engine, delivery)
        except SimulatedCrashError:
            raise
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the rest
            logger.exception(
                "delivery of post %s to %s failed unexpectedly; it stays as it was",
                delivery.post_id,
                delivery.account_id,
            )
        done += 1
    return done


def step(engine: Engine, delivery: domain.Delivery) -> None:
    if delivery.status in (domain.TAKING_DOWN, domain.TAKEDOWN_FAILED):
        from services.publishing import takedown  # it builds on this module

        takedown.take_down(engine, delivery)
        return
    approval = engine.approvals.get(delivery.post_id, delivery.round)
    if approval is None or approval.event is None:
        _settle(engine, replace(delivery, status=domain.FAILED, reason="no_approval"))
        return
    stopped = approval.state in (domain.RECALLED, domain.ROUND_HELD)
    if stopped and delivery.status not in (domain.SENDING, domain.RECONCILING):
        _settle(
            engine,
            replace(
                delivery,
                status=domain.HELD,
                reason="recalled" if approval.state == domain.RECALLED else "held",
                next_attempt_at=None,
            ),
        )
        return
    if delivery.status in (domain.SENDING, domain.RECONCILING):
        reconcile(engine, delivery, approval)
    else:
        attempt(engine, delivery, approval)


# --- one attempt -----------------------------------------------------------------


@dataclass(frozen=True)
class _Ready:
    account: domain.Account
    dest: Destination
    adapter: Adapter
    caption: str
    media: tuple[Media, ...]


def attempt(engine: Engine, delivery: domain.Delivery, approval: Approval) -> None:
    now = engine.now()
    ready = _prepare(engine, delivery, approval, now)
    if ready is None:
        return
    claimed = replace(
        delivery,
        status=domain.SENDING,
        attempts=delivery.attempts + 1,
        sending_since=now,
        at=now,
        target=ready.account.kind,
        reason=RESEND if delivery.reason == RESEND else "",
        next_attempt_at=None,
    )
    if not engine.deliveries.claim(delivery, claimed):
        return  # another worker has it
    _settle(engine, claimed)
    try:
        live = _publish(ready, claimed)
    except PlatformError as error:
        metrics.publish_attempt(ready.account.kind, error.kind)
        _after_error(engine, claimed, ready.account, error)
        return
    except Exception as exc:  # noqa: BLE001 - after the call: it may exist
        metrics.publish_attempt(ready.account.kind, "unexpected")
        logger.exception("post %s: unexpected error sending", claimed.post_id)
        _after_error(engine, claimed, ready.account, AmbiguousError(type(exc).__name__))
        return
    metrics.publish_attempt(ready.account.kind, "ok")
    if engine.crash_after_answer is not None:
        engine.crash_after_answer(claimed)
    _went_live(engine, claimed, ready.account, live)


def _prepare(
    engine: Engine, delivery: domain.Delivery, approval: Approval, now: datetime
) -> _Ready | None:
    """Everything needed to send, or None with the delivery settled (waiting, failed
    or consent asked again)."""
    assert approval.event is not None
    event = approval.event
    account = engine.accounts.get(delivery.account_id)
    refusal = domain.refusal(account, delivery.account_id, delivery.school_id)
    if refusal == "account_disabled":
        _wait(engine, delivery, "account_disabled", now)
        return None
    if refusal is not None or account is None:
        _fail(engine, delivery, refusal or "unknown_account", "")
        return None
    adapter = engine.platforms.get(account.kind)
    if adapter is None:
        _fail(engine, delivery, "unsupported_target", account.kind)
        return None
    if engine.sites is not None:
        site = engine.sites.get(account.kind)
        if site is None or not site.approved:
            _wait(engine, delivery, "site_not_approved", now)
            return None
    if account.connection != domain.ACTIVE:
        _wait(engine, delivery, "needs_reconnect", now, account.status_reason)
        return None
    credentials = None
    if account.kind not in NO_TOKEN_PLATFORMS:
        credentials = engine.tokens.get(account.account_id) if engine.tokens else None
        if credentials is None:
            _wait(engine, delivery, "needs_reconnect", now, "not connected yet")
            return None
    if not _gate_fresh(engine, approval, now):
        _recheck_consent(engine, delivery, approval, now)
        return None
    try:
        media = _media(engine, event)
    except _ImageProblemError as problem:
        _fail(engine, delivery, problem.reason, str(problem))
        return None
    caption = limits.with_footer(event.caption, account.footer)
    problems = limits.check(
        account.kind,
        event.caption,
        account.footer,
        [_info(m) for m in media],
    )
    if problems:
        _fail(engine, delivery, "does_not_fit", " ".join(p.message for p in problems))
        return None
    return _Ready(
        account,
        engine.destination(account, credentials),
        adapter,
        caption,
        media,
    )


def _publish(ready: _Ready, delivery: domain.Delivery) -> LivePost:
    if ready.account.kind in KEYED_PLATFORMS:
        keyed: Any = ready.adapter
        result: LivePost = keyed.publish(
            ready.dest, ready.caption, ready.media, idempotency_key=delivery.post_id
        )
        return result
    return ready.adapter.publish(ready.dest, ready.caption, ready.media)


def _after_error(
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    error: PlatformError,
) -> None:
    now = engine.now()
    policy = engine.policy
    logger.warning(
        "post %s on %s: %s (%s)",
        delivery.post_id,
        delivery.account_id,
        error.kind,
        error.code or error.status or "",
    )
    if isinstance(error, AmbiguousError):
        _settle(
            engine,
            replace(
                delivery,
                status=domain.RECONCILING,
                reason="reconciling:0",
                detail=error.message,
                next_attempt_at=now + timedelta(seconds=policy.reconcile_seconds[0]),
                at=now,
            ),
        )
    elif isinstance(error, RateLimitedError):
        retry_at = error.retry_at or now + timedelta(seconds=policy.rate_limit_fallback)
        _wait(engine, delivery, "rate_limited", now, error.message, retry_at)
    elif isinstance(error, AuthError):
        needs_reconnect(engine, account, error.message)
        _wait(engine, delivery, "needs_reconnect", now, error.message)
    elif isinstance(error, TransientError) and delivery.attempts <= len(
        policy.retry_seconds
    ):
        wait = policy.retry_seconds[delivery.attempts - 1]
        retry_at = now + timedelta(seconds=wait)
        _wait(engine, delivery, "retrying", now, error.message, retry_at)
    elif isinstance(error, PermanentError) and delivery.reason == RESEND:
        # Sent again after its first answer was lost: a refusal now may be the
        # platform refusing a duplicate of our own live post. Look for it again.
        _settle(
            engine,
            replace(
                delivery,
                status=domain.RECONCILING,
                reason="reconciling:0",
                detail=f"refused when sent again ({error.message}): looking for it",
                next_attempt_at=now + timedelta(seconds=policy.reconcile_seconds[0]),
                at=now,
            ),
        )
    elif isinstance(error, (TransientError, PermanentError)):
        _fail(engine, delivery, error.code or error.kind, error.message)
    else:
        _fail(engine, delivery, error.kind, error.message)


def needs_reconnect(engine: Engine, account: domain.Account, why: str) -> None:
    """The account's token no longer works: its owner and the school's admins must
    connect it again (announced; the page shows it); its posts wait."""
    if account.connection == domain.NEEDS_RECONNECT:
        return
    engine.accounts.update(
        replace(
            account,
            connection=domain.NEEDS_RECONNECT,
            status_reason=why or "the platform refused the account's token",
        )
    )


# --- reconciliation ----------------------------------------------------------------


def reconcile(engine: Engine, delivery: domain.Delivery, approval: Approval) -> None:
    """Find a post whose creation answer was lost, before anything is sent again."""
    assert approval.event is not None
    now = engine.now()
    looks, failed = _counts(delivery)
    claimed = replace(
        delivery,
        status=domain.RECONCILING,
        reason=f"reconciling:{looks}:{failed}",
        sending_since=now,
        next_attempt_at=now + engine.policy.lease,
        at=now,
    )
    if not engine.deliveries.claim(delivery, claimed):
        return
    account = engine.accounts.get(delivery.account_id)
    adapter = engine.platforms.get(account.kind) if account else None
    if account is None or adapter is None:
        _unconfirmed(engine, claimed, "the account is gone: check the platform")
        return
    credentials = engine.tokens.get(account.account_id) if engine.tokens else None
    dest = engine.destination(account, credentials)
    caption = limits.with_footer(approval.event.caption, account.footer)
    since = (delivery.sending_since or delivery.at) - timedelta(minutes=10)
    try:
        found = find_ours(
            adapter.recent(dest, since), caption, len(approval.event.images)
        )
    except AmbiguousError as error:  # several posts match: a person must say
        _unconfirmed(engine, claimed, error.message)
        return
    except AuthError as error:
        needs_reconnect(engine, account, error.message)
        _look_again(engine, claimed, looks, "needs_reconnect", now)
        return
    except PlatformError as error:
        _look_again(engine, claimed, looks, error.kind, now)
        return
    if found is not None:
        logger.info("post %s found live on %s", delivery.post_id, account.account_id)
        _went_live(engine, claimed, account, LivePost(found.external_id, found.url))
        return
    if looks + 1 < len(engine.policy.reconcile_seconds):
        wait = engine.policy.reconcile_seconds[looks + 1]
        _settle(
            engine,
            replace(
                claimed,
                reason=f"reconciling:{looks + 1}",
                next_attempt_at=now + timedelta(seconds=wait),
            ),
        )
        return
    # Looked long enough: it was not created. Sending again is safe, unless the
    # round was stopped meanwhile (consent changed): then it is held.
    if approval.state in (domain.RECALLED, domain.ROUND_HELD) or claimed.takedown_id:
        _settle(
            engine,
            replace(claimed, status=domain.HELD, reason="held", next_attempt_at=None),
        )
        if claimed.takedown_id:
            from services.publishing import takedown

            takedown.maybe_complete(engine, claimed.takedown_id)
        return
    logger.info(
        "post %s not on %s: sending again", delivery.post_id, account.account_id
    )
    if claimed.attempts > len(engine.policy.retry_seconds):
        _fail(engine, claimed, "not_created", "the platform never created it")
        return
    _settle(
        engine,
        replace(
            claimed,
            status=domain.PENDING,
            reason=RESEND,
            sending_since=None,
            next_attempt_at=now,
        ),
    )


MAX_FAILED_LOOKS = 10  # the platform would not show its recent posts: ask a person


def _looks(delivery: domain.Delivery) -> int:
    return _counts(delivery)[0]


def _counts(delivery: domain.Delivery) -> tuple[int, int]:
    """(looks that found nothing, looks the platform would not answer), kept in the
    reason as ``reconciling:<looks>[:<failed>]``."""
    if not delivery.reason.startswith("reconciling:"):
        return 0, 0
    parts = delivery.reason.split(":")[1:]
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return 0, 0


def _look_again(
    engine: Engine, delivery: domain.Delivery, looks: int, why: str, now: datetime
) -> None:
    """The platform would not list its recent posts this time: look again later; after
    ``MAX_FAILED_LOOKS`` a person is asked (never a second copy, never silence)."""
    failed = _counts(delivery)[1] + 1
    if failed >= MAX_FAILED_LOOKS:
        _unconfirmed(
            engine,
            delivery,
            f"the platform would not list its recent posts ({why}): check whether "
            "the post is live",
        )
        return
    seconds = engine.policy.reconcile_seconds
    wait = max(seconds[min(looks, len(seconds) - 1)], engine.policy.wait_seconds)
    _settle(
        engine,
        replace(
            delivery,
            reason=f"reconciling:{looks}:{failed}",
            detail=why,
            next_attempt_at=now + timedelta(seconds=wait),
        ),
    )


def _unconfirmed(engine: Engine, delivery: domain.Delivery, why: str) -> None:
    _settle(
        engine,
        replace(
            delivery,
            status=domain.UNCONFIRMED,
            reason="unconfirmed",
            detail=why,
            next_attempt_at=None,
        ),
    )


# --- people's actions ----------------------------------------------------------------


class DeliveryStateError(Exception):
    """The delivery is not in a state this action applies to."""


def retry(engine: Engine, post_id: str, account_id: str) -> domain.Delivery:
    """An approver or admin sends a failed or waiting delivery again now."""
    delivery = engine.deliveries.get(post_id, account_id)
    if delivery is None or delivery.status not in (domain.FAILED, domain.WAITING):
        raise DeliveryStateError("only a failed or waiting delivery can be retried")
    now = engine.now()
    again = replace(
        delivery,
        status=domain.PENDING,
        reason="",
        detail="",
        attempts=0,
        next_attempt_at=now,
        at=now,
    )
    _settle(engine, again)
    return again


def confirm(
    engine: Engine, post_id: str, account_id: str, live_url: str | None
) -> domain.Delivery:
    """A person checked an unconfirmed delivery on the platform: live at this URL,
    or not there (None: it is sent again)."""
    delivery = engine.deliveries.get(post_id, account_id)
    if delivery is None or delivery.status != domain.UNCONFIRMED:
        raise DeliveryStateError("only an unconfirmed delivery can be confirmed")
    now = engine.now()
    if live_url:
        account = engine.accounts.get(account_id)
        done = replace(
            delivery,
            status=domain.LIVE,
            url=live_url,
            location=live_url,
            reason="confirmed_by_a_person",
            live_at=now,
            at=now,
            next_attempt_at=None,
        )
        _settle(engine, done, [_published(done, account)])
        if done.takedown_id:
            done = replace(
                done, status=domain.TAKING_DOWN, reason="try:0", next_attempt_at=now
            )
            _settle(engine, done)
        return done
    again = replace(
        delivery, status=domain.PENDING, reason="", next_attempt_at=now, at=now
    )
    _settle(engine, again)
    return again


# --- outcomes ------------------------------------------------------------------------


def _went_live(
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    live: LivePost,
) -> None:
    now = engine.now()
    done = replace(
        delivery,
        status=domain.LIVE,
        external_id=live.external_id,
        url=live.url,
        location=live.url or live.external_id,
        target=account.kind,
        reason="",
        detail="",
        live_at=now,
        at=now,
        next_attempt_at=None,
    )
    _settle(engine, done, [_published(done, account)])
    logger.info("post %s live on %s", delivery.post_id, account.account_id)
    if done.takedown_id:  # consent changed while it was being sent: down it comes
        _settle(
            engine,
            replace(
                done,
                status=domain.TAKING_DOWN,
                reason="try:0",
                next_attempt_at=now,
                at=engine.now(),
            ),
        )


def _published(
    delivery: domain.Delivery, account: domain.Account | None
) -> contracts.PostPublished:
    return contracts.PostPublished(
        post_id=delivery.post_id,
        school_id=delivery.school_id,
        account=delivery.account_id,
        target=account.kind if account else delivery.target,
        location=delivery.url or delivery.location,
    )


def _wait(
    engine: Engine,
    delivery: domain.Delivery,
    reason: str,
    now: datetime,
    detail: str = "",
    until: datetime | None = None,
) -> None:
    _settle(
        engine,
        replace(
            delivery,
            status=domain.WAITING,
            reason=reason,
            detail=detail,
            sending_since=None,
            next_attempt_at=until
            or now + timedelta(seconds=engine.policy.wait_seconds),
            at=now,
        ),
    )


def _every(engine: Engine) -> timedelta:
    return timedelta(seconds=engine.policy.wait_seconds)


def _fail(engine: Engine, delivery: domain.Delivery, reason: str, detail: str) -> None:
    now = engine.now()
    failed = replace(
        delivery,
        status=domain.FAILED,
        reason=reason,
        detail=detail,
        sending_since=None,
        next_attempt_at=None,
        at=now,
    )
    _settle(
        engine,
        failed,
        [
            contracts.PublishFailed(
                post_id=failed.post_id,
                school_id=failed.school_id,
                account=failed.account_id,
                reason=reason,
                detail=detail[:2000],
            )
        ],
    )


def _settle(
    engine: Engine,
    delivery: domain.Delivery,
    messages: Sequence[contracts.Message] = (),
) -> None:
    engine.deliveries.settle(delivery, [*messages, updated(delivery)])


def updated(delivery: domain.Delivery) -> contracts.DeliveryUpdated:
    """What the pages are told of a delivery (never a server path: a folder's
    location is only said to be the school's folder)."""
    url = delivery.url if delivery.url.startswith(("http://", "https://")) else ""
    return contracts.DeliveryUpdated(
        post_id=delivery.post_id,
        school_id=delivery.school_id,
        account_id=delivery.account_id,
        platform=delivery.target,
        state=delivery.status,
        reason=delivery.reason.split(":", 1)[0],
        detail=delivery.detail[:2000],
        url=url,
        attempts=delivery.attempts,
        retry_at=delivery.next_attempt_at
        if delivery.status == domain.WAITING
        else None,
        at=delivery.at,
    )


# --- consent freshness -------------------------------------------------------------


def _gate_fresh(engine: Engine, approval: Approval, now: datetime) -> bool:
    if approval.state != domain.CLEARED or approval.updated_at is None:
        return False
    return now - approval.updated_at <= engine.policy.gate_fresh


def _recheck_consent(
    engine: Engine, delivery: domain.Delivery, approval: Approval, now: datetime
) -> None:
    """Consent cleared this round too long ago: ask again before sending (once per
    wait); the delivery waits for the answer."""
    assert approval.event is not None
    asked_recently = (
        approval.state == domain.VERIFYING
        and approval.updated_at is not None
        and now - approval.updated_at < timedelta(seconds=engine.policy.wait_seconds)
    )
    messages: list[contracts.Message] = []
    if not asked_recently:
        engine.approvals.settle(
            approval.post_id, approval.round, domain.VERIFYING, approval.school_id
        )
        messages.append(verify_request(approval.event))
    _settle(
        engine,
        replace(
            delivery,
            status=domain.WAITING,
            reason="checking_consent",
            next_attempt_at=now + timedelta(seconds=engine.policy.wait_seconds),
            at=now,
        ),
        messages,
    )


def verify_request(event: contracts.PostApproved) -> contracts.VerifyPostConsent:
    return contracts.VerifyPostConsent(
        post_id=event.post_id,
        school_id=event.school_id,
        round=event.round,
        accounts=list(event.accounts),
        shown=[
            contracts.ShownPupil(
                photo_id=image.photo_id,
                pupil_id=face.pupil_id,
                consent_versions=list(face.consent_versions),
            )
            for image in event.images
            for face in image.shown
        ],
    )


# --- content ---------------------------------------------------------------------


class _ImageProblemError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _media(engine: Engine, event: contracts.PostApproved) -> tuple[Media, ...]:
    """The approved redacted images, byte for byte what the approver saw."""
    out = []
    for image in event.images:
        try:
            data = engine.redacted.get(image.redacted_key)
        except BlobNotFoundError:
            raise _ImageProblemError(
                "image_missing", f"no redacted image {image.photo_id}"
            ) from None
        if hashlib.sha256(data).hexdigest() != image.sha256:
            raise _ImageProblemError(
                "image_changed",
                f"redacted image {image.photo_id} is not the approved one",
            )
        out.append(
            Media(
                image.photo_id,
                data,
                _content_type(data),
                engine.media_url(image.redacted_key),
            )
        )
    return tuple(out)


def _content_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    return "image/jpeg"


def _info(media: Media) -> limits.ImageInfo:
    try:
        with Image.open(io.BytesIO(media.data)) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - not an image we can read: let limits say so
        width = height = 0
    return limits.ImageInfo(width, height, len(media.data), media.content_type)
