"""One attempt to send a delivery: everything checked (the account, the site, the
token, consent's freshness, the images, the platform's limits), the claim committed,
the platform called outside any transaction, then its answer settled."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from PIL import Image

from services.publishing import accounts, domain, limits
from services.publishing.delivery.engine import Engine, settling
from services.publishing.delivery.transitions import (
    claim,
    fail,
    owe,
    reconciling,
    verify_request,
    wait,
    went_live,
)
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
)
from services.publishing.ports import Approval, Unit
from shared import contracts, metrics
from shared.storage import BlobNotFoundError

logger = logging.getLogger(__name__)

NO_TOKEN_PLATFORMS = ("folder",)  # a folder needs no token
RESEND = "resend"  # sent again after its answer was lost and it was not found
KEYED_PLATFORMS = ("folder", "webhook")  # take the post id as an idempotency key

Outcome = Callable[[Unit], None]  # what to settle instead of sending


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
    if not isinstance(ready, _Ready):
        with settling(engine) as unit:
            ready(unit)
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
    if not claim(engine, delivery, claimed, announce=True):
        return  # another worker has it
    try:
        live = _publish(ready, claimed)
    except PlatformError as error:
        metrics.publish_attempt(ready.account.kind, error.kind)
        _refused(engine, claimed, ready.account, error)
        return
    except Exception as exc:  # noqa: BLE001 - after the call: it may exist
        metrics.publish_attempt(ready.account.kind, "unexpected")
        logger.exception("post %s: unexpected error sending", claimed.post_id)
        _refused(engine, claimed, ready.account, AmbiguousError(type(exc).__name__))
        return
    metrics.publish_attempt(ready.account.kind, "ok")
    if engine.crash_after_answer is not None:
        engine.crash_after_answer(claimed)
    with settling(engine) as unit:
        went_live(unit, engine, claimed, ready.account, live)


def _prepare(
    engine: Engine, delivery: domain.Delivery, approval: Approval, now: datetime
) -> _Ready | Outcome:
    """Everything needed to send, or what to settle instead (waiting, failed or
    consent asked again)."""
    assert approval.event is not None
    event = approval.event
    found = _account(engine, delivery, now)
    if not isinstance(found, tuple):
        return found
    account, adapter, credentials = found
    if not _gate_fresh(engine, approval, now):
        return lambda unit: _recheck_consent(unit, engine, delivery, approval, now)
    try:
        media = _media(engine, event)
    except _ImageProblemError as problem:
        reason, detail = problem.reason, str(problem)
        return lambda unit: fail(unit, engine, delivery, reason, detail)
    problems = limits.check(
        account.kind, event.caption, account.footer, [_info(m) for m in media]
    )
    if problems:
        words = " ".join(p.message for p in problems)
        return lambda unit: fail(unit, engine, delivery, "does_not_fit", words)
    return _Ready(
        account,
        engine.destination(account, credentials),
        adapter,
        limits.with_footer(event.caption, account.footer),
        media,
    )


def _account(
    engine: Engine, delivery: domain.Delivery, now: datetime
) -> tuple[domain.Account, Adapter, Credentials | None] | Outcome:
    """The account, its platform's adapter and its token, if it may be sent to now;
    else what to settle (default deny)."""
    account = engine.accounts.get(delivery.account_id)
    refusal = domain.refusal(account, delivery.account_id, delivery.school_id)
    if refusal == "account_disabled":
        return lambda unit: wait(unit, engine, delivery, "account_disabled", now)
    if refusal is not None or account is None:
        why = refusal or "unknown_account"
        return lambda unit: fail(unit, engine, delivery, why, "")
    adapter = engine.platforms.get(account.kind)
    if adapter is None:
        kind = account.kind
        return lambda unit: fail(unit, engine, delivery, "unsupported_target", kind)
    if engine.sites is not None:
        site = engine.sites.get(account.kind)
        if site is None or not site.approved:
            return lambda unit: wait(unit, engine, delivery, "site_not_approved", now)
    if account.connection != domain.ACTIVE:
        said = account.status_reason
        return lambda unit: wait(unit, engine, delivery, "needs_reconnect", now, said)
    credentials = None
    if account.kind not in NO_TOKEN_PLATFORMS:
        credentials = engine.tokens.get(account.account_id) if engine.tokens else None
        if credentials is None:
            return lambda unit: wait(
                unit, engine, delivery, "needs_reconnect", now, "not connected yet"
            )
    return account, adapter, credentials


def _publish(ready: _Ready, delivery: domain.Delivery) -> LivePost:
    if ready.account.kind in KEYED_PLATFORMS:
        keyed: Any = ready.adapter
        result: LivePost = keyed.publish(
            ready.dest, ready.caption, ready.media, idempotency_key=delivery.post_id
        )
        return result
    return ready.adapter.publish(ready.dest, ready.caption, ready.media)


def _refused(
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    error: PlatformError,
) -> None:
    """The platform did not say it is live: settle what that means, in one unit."""
    logger.warning(
        "post %s on %s: %s (%s)",
        delivery.post_id,
        delivery.account_id,
        error.kind,
        error.code or error.status or "",
    )
    now = engine.now()
    with settling(engine) as unit:
        _after_error(unit, engine, delivery, account, error, now)


def _after_error(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    error: PlatformError,
    now: datetime,
) -> None:
    policy = engine.policy
    if isinstance(error, AmbiguousError):
        owe(unit, reconciling(delivery, engine, now, error.message))
    elif isinstance(error, RateLimitedError):
        retry_at = error.retry_at or now + timedelta(seconds=policy.rate_limit_fallback)
        wait(unit, engine, delivery, "rate_limited", now, error.message, retry_at)
    elif isinstance(error, AuthError):
        accounts.needs_reconnect(unit, account, error.message)
        wait(unit, engine, delivery, "needs_reconnect", now, error.message)
    elif isinstance(error, TransientError) and delivery.attempts <= len(
        policy.retry_seconds
    ):
        retry_at = now + timedelta(seconds=policy.retry_seconds[delivery.attempts - 1])
        wait(unit, engine, delivery, "retrying", now, error.message, retry_at)
    elif isinstance(error, PermanentError) and delivery.reason == RESEND:
        # Sent again after its first answer was lost: a refusal now may be the
        # platform refusing a duplicate of our own live post. Look for it again.
        detail = f"refused when sent again ({error.message}): looking for it"
        owe(unit, reconciling(delivery, engine, now, detail))
    elif isinstance(error, (TransientError, PermanentError)):
        fail(unit, engine, delivery, error.code or error.kind, error.message)
    else:
        fail(unit, engine, delivery, error.kind, error.message)


# --- consent freshness -------------------------------------------------------------


def _gate_fresh(engine: Engine, approval: Approval, now: datetime) -> bool:
    if approval.state != domain.CLEARED or approval.updated_at is None:
        return False
    return now - approval.updated_at <= engine.policy.gate_fresh


def _recheck_consent(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    approval: Approval,
    now: datetime,
) -> None:
    """Consent cleared this round too long ago: ask again before sending (once per
    wait); the delivery waits for the answer."""
    assert approval.event is not None
    asked_recently = (
        approval.state == domain.VERIFYING
        and approval.updated_at is not None
        and now - approval.updated_at < engine.policy.every
    )
    if not asked_recently:
        unit.approvals.settle(
            approval.post_id, approval.round, domain.VERIFYING, approval.school_id
        )
    owe(
        unit,
        replace(
            delivery,
            status=domain.WAITING,
            reason="checking_consent",
            next_attempt_at=now + engine.policy.every,
            at=now,
        ),
        [] if asked_recently else [verify_request(approval.event)],
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
