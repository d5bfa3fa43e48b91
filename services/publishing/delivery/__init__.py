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
  marked ``sending`` with the time, in a unit of work of its own committed before the
  call; the platform is never called inside a transaction. Each settle afterwards is
  one unit of work: the new state and the messages it owes (``transitions``, ids
  fixed by the transition) are written together to publishing's outbox and sent
  after the commit (the relay sends what the broker would not take).
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

Modules: ``engine`` (policy, engine, one unit per change), ``transitions`` (states
and what each owes), ``attempt`` (one send), ``reconcile`` (a lost answer),
``removal`` (a takedown's copies), ``people`` (retry, confirm), ``loop`` (a turn).
"""

from services.publishing.delivery.attempt import KEYED_PLATFORMS, RESEND, attempt
from services.publishing.delivery.engine import (
    Engine,
    Policy,
    SimulatedCrashError,
    settling,
)
from services.publishing.delivery.loop import run_due, step
from services.publishing.delivery.people import DeliveryStateError, confirm, retry
from services.publishing.delivery.reconcile import MAX_FAILED_LOOKS, reconcile
from services.publishing.delivery.transitions import (
    claim,
    owe,
    schedule,
    settle,
    updated,
    verify_request,
)

__all__ = [
    "KEYED_PLATFORMS",
    "MAX_FAILED_LOOKS",
    "RESEND",
    "DeliveryStateError",
    "Engine",
    "Policy",
    "SimulatedCrashError",
    "attempt",
    "claim",
    "confirm",
    "owe",
    "reconcile",
    "retry",
    "run_due",
    "schedule",
    "settle",
    "settling",
    "step",
    "updated",
    "verify_request",
]
