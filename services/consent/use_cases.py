"""Consent's state changes from the admin API and pages, the CLI and the expiry sweep:
one function per change, each one unit of work (``shared.uow``).

Every change of who may be shown emits its ``ConsentChanged`` through the unit: it is
written with the change, in one transaction, and sent after the commit (or by the
relay). A withdrawal, objection or leaving deletes the pupil's encodings in that same
transaction. The bus's use cases are in ``handlers``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from services.consent import changes, domain, import_rules
from services.consent.domain import (
    BiometricConsent,
    ConsentRecord,
    NeverPublish,
    Pupil,
    School,
    TakeDown,
)
from services.consent.importing import ImportReport, ImportRow
from services.consent.ports import Unit
from shared.errors import ConflictError, InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)


def add_school(unit: Unit, school: School) -> bool:
    """Create a school unless it exists (idempotent); True if it was created."""
    with unit:
        created = unit.schools.add(school)
        unit.commit()
    return created


def add_pupil(unit: Unit, pupil: Pupil) -> None:
    with unit:
        _need_school(unit, pupil.school_slug)
        unit.pupils.add(pupil)
        unit.commit()


def update_pupil(unit: Unit, pupil: Pupil, today: date, policy: TakeDown) -> int:
    """Replace a pupil's roll details; leaving deletes their encodings and says so
    with ConsentChanged(restricted), coming back with ConsentChanged(unrestricted).
    The number of encodings deleted."""
    with unit:
        before = _need_pupil(unit, pupil.school_slug, pupil.pupil_id)
        unit.pupils.save(pupil)
        deleted = 0
        if before.on_roll != pupil.on_roll:
            if not pupil.on_roll:
                deleted = unit.enrolments.forget(pupil.school_slug, pupil.pupil_id)
            cause = "unrestricted" if pupil.on_roll else "restricted"
            _emit_standing(
                unit,
                pupil.school_slug,
                pupil.pupil_id,
                cause,
                today,
                take_down=policy.on_leaving,
            )
        unit.commit()
    return deleted


def record_consent(
    unit: Unit, school_id: str, record: ConsentRecord, today: date
) -> ConsentRecord:
    """A new version for the record's scope (history is never overwritten) and its
    ConsentChanged; returns it with its id and version."""
    with unit:
        _need_pupil(unit, school_id, record.pupil_id)
        saved = unit.consents.add(school_id, record)
        unit.emit(
            changes.consent_changed(school_id, record.pupil_id, [saved], today),
            actor=record.recorded_by or None,
        )
        unit.commit()
    return saved


def set_never_publish(
    unit: Unit,
    school_id: str,
    pupil_id: str,
    flag: NeverPublish,
    by: str,
    today: date,
) -> NeverPublish:
    """A new version of the flag; setting it says ``restricted`` (its reason is never
    named), clearing it ``unrestricted``."""
    with unit:
        _need_pupil(unit, school_id, pupil_id)
        current = unit.never_publish.current(school_id, pupil_id)
        saved = unit.never_publish.add(school_id, pupil_id, flag, by)
        was = current.active if current else False
        if was != flag.active:
            cause = "restricted" if flag.active else "unrestricted"
            _emit_standing(unit, school_id, pupil_id, cause, today, actor=by)
        unit.commit()
    return saved


def record_biometric(
    unit: Unit,
    school_id: str,
    consent: BiometricConsent,
    by: str,
    *,
    given_by: str = "",
    relationship: str = "",
    method: str = "",
    evidence_ref: str = "",
) -> int:
    """A new biometric consent version; if it no longer permits enrolment the
    pupil's encodings are deleted at once. The number deleted."""
    with unit:
        _need_pupil(unit, school_id, consent.pupil_id)
        unit.biometrics.add(
            school_id,
            consent,
            by,
            given_by=given_by,
            relationship=relationship,
            method=method,
            evidence_ref=evidence_ref,
        )
        deleted = 0
        if not consent.permits_enrolment:
            deleted = unit.enrolments.forget(school_id, consent.pupil_id)
        unit.commit()
    return deleted


def enrol(
    unit: Unit,
    school_id: str,
    pupil_id: str,
    encodings: Sequence[Sequence[float]],
    by: str,
) -> int:
    """Store encodings if the pupil may be enrolled (checked in the same
    transaction); ConflictError saying why not. The pupil's number enrolled."""
    if not all(domain.valid_encoding(e) for e in encodings):
        raise InvalidInputError("an encoding is 128 finite numbers")
    with unit:
        pupil = unit.pupils.get(school_id, pupil_id, lock=True)
        consent = unit.biometrics.current(school_id, pupil_id)
        refusal = domain.may_enrol(pupil, consent)
        if refusal is not None:
            if pupil is None:
                raise NotFoundError(f"no pupil {pupil_id} in {school_id}")
            raise ConflictError(
                f"{pupil_id} may not be enrolled: {refusal}", code="not_enrollable"
            )
        unit.enrolments.add(school_id, pupil_id, encodings, by)
        enrolled = unit.enrolments.count(school_id, pupil_id)
        unit.commit()
    return enrolled


def forget_faces(unit: Unit, school_id: str, pupil_id: str) -> int:
    """Delete a pupil's encodings; the number deleted."""
    with unit:
        _need_pupil(unit, school_id, pupil_id)
        deleted = unit.enrolments.forget(school_id, pupil_id)
        unit.commit()
    return deleted


def sweep_expired(unit: Unit, today: date, policy: TakeDown) -> int:
    """ConsentChanged(expired) once for every consent version in force whose expiry
    has passed (ids derived from the record: a second sweep finds them in the
    outbox); the number newly announced."""
    with unit:
        due = {
            changes.expired_id(record): (school_id, record)
            for school_id, record in unit.consents.expired_in_force(today)
        }
        known = unit.outbox.recorded(due)
        for message_id, (school_id, record) in due.items():
            if message_id in known:
                continue
            event = changes.expired(school_id, record, take_down=policy.on_expiry)
            unit.emit(event, message_id=message_id)
        unit.commit()
    announced = len(due) - len(known)
    if announced:
        logger.info("expiry sweep: %d consent(s) expired", announced)
    return announced


def import_rows(
    unit: Unit,
    school_id: str,
    rows: Sequence[ImportRow],
    *,
    by: str,
    today: date,
    dry_run: bool,
    policy: TakeDown,
) -> ImportReport:
    """Apply parsed rows in one transaction (or only count, for a dry run: nothing
    is committed). Idempotent on pupil id: a row that changes nothing writes
    nothing."""
    with unit:
        _need_school(unit, school_id)
        plan = import_rules.plan(
            rows,
            by,
            pupils=unit.pupils.of_school(school_id),
            consents=unit.consents.current_wide(school_id),
            biometrics=unit.biometrics.of_school(school_id),
            enrolled=unit.enrolments.counts(school_id),
        )
        if dry_run:
            return plan.report
        unit.pupils.add_many(school_id, plan.new_pupils)
        unit.pupils.save_many(school_id, plan.updated_pupils)
        stored = unit.consents.add_many(school_id, plan.consents)
        unit.biometrics.add_many(school_id, plan.biometrics, by, import_rules.METHOD)
        for pupil_id in plan.forget:
            unit.enrolments.forget(school_id, pupil_id)
        for pupil_id in plan.left:
            unit.emit(
                changes.restricted(
                    school_id, pupil_id, today, take_down=policy.on_leaving
                ),
                actor=by,
            )
        records: dict[str, list[ConsentRecord]] = defaultdict(list)
        for record in stored:  # announced with the ids they were stored under
            records[record.pupil_id].append(record)
        for pupil_id in plan.announce:
            unit.emit(
                changes.consent_changed(school_id, pupil_id, records[pupil_id], today),
                actor=by,
            )
        unit.commit()
    plan.report.applied = True
    return plan.report


def _need_school(unit: Unit, school_id: str) -> School:
    school = unit.schools.get(school_id)
    if school is None:
        raise NotFoundError(f"no school {school_id}")
    return school


def _need_pupil(unit: Unit, school_id: str, pupil_id: str) -> Pupil:
    """The pupil, held until the unit ends; NotFoundError if there is none."""
    pupil = unit.pupils.get(school_id, pupil_id, lock=True)
    if pupil is None:
        raise NotFoundError(f"no pupil {pupil_id} in {school_id}")
    return pupil


def _emit_standing(
    unit: Unit,
    school_id: str,
    pupil_id: str,
    cause: str,
    today: date,
    actor: str | None = None,
    take_down: bool = True,
) -> None:
    if cause == "restricted":
        unit.emit(
            changes.restricted(school_id, pupil_id, today, take_down), actor=actor
        )
        return
    standing = unit.consents.standings(school_id, [pupil_id]).get(pupil_id)
    records = list(standing.consents.values()) if standing else []
    unit.emit(
        changes.consent_changed(school_id, pupil_id, records, today, cause=cause),
        actor=actor,
    )
