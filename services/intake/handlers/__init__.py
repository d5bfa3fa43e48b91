"""Intake's use cases: every write intake makes, from its API, the CLI or its sweep.

Each runs in one unit of work (``ports.unit()``, ``shared.uow``): its changes and the
messages it emits commit together, and the messages leave only through intake's
outbox (sent after the commit; what the broker will not take waits for the relay).
Intake consumes no messages, so none of these is a bus handler.

An upload stores its originals *before* the unit (deterministic keys, so a retry
writes the same objects) and removes them again if the post cannot be recorded.
"""

from __future__ import annotations

from services.intake.handlers.deletions import confirm_deletion, sweep_overdue
from services.intake.handlers.devices import (
    approve,
    enrol,
    enrolment_code,
    new_code,
    new_token,
    register,
    revoke,
)
from services.intake.handlers.uploads import (
    Receipt,
    authorise_upload,
    refuse,
    submit_post,
    submitted,
)
from services.intake.originals import StorageUnavailableError, Upload

__all__ = [
    "Receipt",
    "StorageUnavailableError",
    "Upload",
    "approve",
    "authorise_upload",
    "confirm_deletion",
    "enrol",
    "enrolment_code",
    "new_code",
    "new_token",
    "refuse",
    "register",
    "revoke",
    "submit_post",
    "submitted",
    "sweep_overdue",
]
