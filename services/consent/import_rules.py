"""What an import of pupils and consents changes. Pure: rows and the school's current
state in, a plan out (``use_cases.import_rows`` applies it in one unit of work).

Idempotent on pupil id: a row that changes nothing plans nothing. A consent answer
that differs from the one in force is a new version; a blank cell where nothing was
recorded says nothing. A pupil who left, or whose biometric consent no longer permits
enrolment, has their encodings deleted; leaving is announced as ``restricted``, a
changed answer as ``recorded`` once stored (the announcement cites the records).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.consent.domain import BiometricConsent, ConsentRecord, Pupil
from services.consent.importing import ImportReport, ImportRow

METHOD = "mis_import"


@dataclass
class ImportPlan:
    report: ImportReport
    new_pupils: list[Pupil] = field(default_factory=list)
    updated_pupils: list[Pupil] = field(default_factory=list)
    consents: list[ConsentRecord] = field(default_factory=list)
    biometrics: list[BiometricConsent] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)  # pupils whose encodings go
    left: list[str] = field(default_factory=list)  # announced as restricted
    announce: list[str] = field(default_factory=list)  # their new records, once stored


def plan(
    rows: Sequence[ImportRow],
    by: str,
    *,
    pupils: Mapping[str, Pupil],
    consents: Mapping[tuple[str, str], ConsentRecord],
    biometrics: Mapping[str, BiometricConsent],
    enrolled: Mapping[str, int],
) -> ImportPlan:
    """The changes these rows make to the school's ``pupils``, purpose-wide
    ``consents`` in force, ``biometrics`` in force and ``enrolled`` encodings."""
    out = ImportPlan(ImportReport(rows=len(rows)))
    for row in rows:
        pupil_id = row.pupil.pupil_id
        before = pupils.get(pupil_id)
        _roll(out, row.pupil, before)
        changed = _consents(row, consents, by)
        out.consents.extend(changed)
        out.report.consents_changed += len(changed)
        old_bio = biometrics.get(pupil_id)
        new_bio = _biometric(row, old_bio)
        if new_bio is not None:
            out.biometrics.append(new_bio)
            out.report.biometric_changed += 1
        if pupil_id in enrolled and not _may_stay_enrolled(row, old_bio):
            out.forget.append(pupil_id)
            out.report.encodings_deleted += enrolled[pupil_id]
        if before is not None and before.on_roll and not row.pupil.on_roll:
            out.left.append(pupil_id)
        elif changed:
            out.announce.append(pupil_id)
    return out


def _roll(out: ImportPlan, pupil: Pupil, before: Pupil | None) -> None:
    if before is None:
        out.new_pupils.append(pupil)
        out.report.pupils_added += 1
    elif before != pupil:
        out.updated_pupils.append(pupil)
        out.report.pupils_updated += 1
    else:
        out.report.pupils_unchanged += 1


def _consents(
    row: ImportRow, current: Mapping[tuple[str, str], ConsentRecord], by: str
) -> list[ConsentRecord]:
    """The row's answers that differ from those in force, as new versions."""
    changed: list[ConsentRecord] = []
    for purpose, status in row.consents.items():
        old = current.get((row.pupil.pupil_id, purpose))
        if old is None and status == "not_returned":
            continue  # a blank cell and nothing recorded: nothing to say
        if old is not None and old.status == status:
            continue
        changed.append(
            ConsentRecord(
                pupil_id=row.pupil.pupil_id,
                purpose=purpose,
                platform=None,
                status=status,
                version=(old.version if old else 0) + 1,
                expires_on=row.expires_on,
                given_by=row.given_by,
                relationship=row.relationship,
                method=METHOD,
                evidence_ref=row.evidence_ref,
                recorded_by=by,
            )
        )
    return changed


def _biometric(row: ImportRow, old: BiometricConsent | None) -> BiometricConsent | None:
    """The row's biometric answer as a new version, if it changes anything."""
    if row.biometric is None:
        return None
    if old is not None and (old.status, old.pupil_objects) == (
        row.biometric,
        row.pupil_objects,
    ):
        return None
    return BiometricConsent(
        row.pupil.pupil_id,
        row.biometric,
        row.pupil_objects,
        (old.version if old else 0) + 1,
    )


def _may_stay_enrolled(row: ImportRow, old: BiometricConsent | None) -> bool:
    """On roll, with biometric consent (the row's, else the one in force) that
    permits enrolment."""
    permits = (
        BiometricConsent("", row.biometric, row.pupil_objects)
        if row.biometric is not None
        else old
    )
    return row.pupil.on_roll and permits is not None and permits.permits_enrolment
