"""Photo-consent rules. Pure: no I/O, no frameworks.

Default deny everywhere: a face is shown only when it is one known pupil of the school,
on roll, without a never-publish flag, whose purpose-wide photo consent and the
consent for every target platform are current on the publish date.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

SLUG = re.compile(r"^[a-z0-9-]{2,40}$")
PUPIL_ID = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")
SCOPE_NAME = re.compile(r"^[a-z0-9_]{1,40}$")
STATUSES = ("granted", "refused", "withdrawn", "not_returned")
PURPOSES = ("social_media", "website", "press", "internal_display")
PLATFORMS = ("facebook", "instagram", "x", "linkedin", "youtube", "tiktok")
METHODS = ("paper", "online", "mis_import", "")
NEVER_PUBLISH_CATEGORIES = (
    "looked_after",
    "adopted",
    "at_risk",
    "court_order",
    "other",
)

ENCODING_DIMS = 128  # a face encoding: 128 finite numbers

# Identification (chosen by measurement: benchmarks/consent_identify.py, see
# docs/architecture.md "Consent"): stricter than face_recognition's 0.6.
TOLERANCE = 0.45
MARGIN = 0.10

# Why a face is masked. A never-publish flag is reported as no_consent.
UNKNOWN, AMBIGUOUS, NO_CONSENT = "unknown", "ambiguous", "no_consent"
EXPIRED, WITHDRAWN, CONSENTED = "expired", "withdrawn", "consented"
# Worst first: the reason given when several scopes fail.
_SEVERITY = (WITHDRAWN, NO_CONSENT, EXPIRED)


@dataclass(frozen=True)
class School:
    slug: str
    name: str
    expiry_month: int = 8  # consent lasts to the end of the academic year by default
    expiry_day: int = 31


@dataclass(frozen=True)
class Pupil:
    school_slug: str
    pupil_id: str
    forename: str
    surname: str
    year_group: str = ""
    class_name: str = ""
    on_roll: bool = True
    left_on: date | None = None
    preferred_name: str = ""


def label(pupil: Pupil) -> dict[str, str]:
    """What an approver may see of a shown pupil: initials and class, never the name."""
    first = (pupil.preferred_name or pupil.forename).strip()[:1]
    last = pupil.surname.strip()[:1]
    initials = "".join(f"{c.upper()}." for c in (first, last) if c)
    return {"initials": initials, "class": pupil.class_name}


@dataclass(frozen=True)
class ConsentRecord:
    """One version of a pupil's answer for a purpose (or one platform of it)."""

    pupil_id: str
    purpose: str
    platform: str | None  # None: the purpose-wide answer
    status: str
    version: int
    record_id: int = 0
    expires_on: date | None = None
    given_by: str = ""
    relationship: str = ""
    method: str = ""
    evidence_ref: str = ""
    recorded_by: str = ""
    recorded_at: datetime | None = None

    @property
    def ref(self) -> str:
        """What a decision cites: record id, scope and version."""
        return f"{self.record_id}:{self.purpose}/{self.platform or '*'}:v{self.version}"

    def state_on(self, day: date) -> str:
        """``consented``, or why not: withdrawn, no_consent or expired."""
        if self.status == "withdrawn":
            return WITHDRAWN
        if self.status != "granted":
            return NO_CONSENT  # refused, and not returned counts as refused
        if self.expires_on is None or day > self.expires_on:
            return EXPIRED  # a yes with no expiry is not trusted: fail closed
        return CONSENTED


@dataclass(frozen=True)
class Standing:
    """All a decision needs to know about one pupil (the newest version of each)."""

    pupil_id: str
    on_roll: bool = True
    never_publish: bool = False
    consents: Mapping[tuple[str, str | None], ConsentRecord] = field(
        default_factory=dict
    )


@dataclass(frozen=True)
class Verdict:
    show: bool
    reason: str
    versions: tuple[str, ...] = ()


Scope = tuple[str, str | None]  # (purpose, platform or None for purpose-wide only)
UNKNOWN_ACCOUNT = "unknown_account"  # a target account consent has not been told of


@dataclass(frozen=True)
class TargetAccount:
    """What publishing said of one of its accounts (``account.changed``)."""

    account_id: str
    school_id: str
    platform: str
    purpose: str
    consent_platform: str | None
    status: str

    @property
    def scope(self) -> Scope:
        """The consent its audience needs: the purpose, and the platform's own answer
        where it is a social platform (which can only narrow the purpose's)."""
        return (self.purpose, self.consent_platform)


def photo_verdict(
    standing: Standing | None,
    purpose: str,
    platforms: Sequence[str],
    days: Sequence[date],
) -> Verdict:
    """May this pupil be shown for ``purpose`` on every platform on every one of
    ``days`` (today and the publish date)?

    A platform answer can only narrow the purpose-wide one: both must say yes.
    """
    scopes: list[Scope] = [(purpose, p) for p in platforms] or [(purpose, None)]
    return scoped_verdict(standing, scopes, days)


def scoped_verdict(
    standing: Standing | None, scopes: Sequence[Scope], days: Sequence[date]
) -> Verdict:
    """May this pupil be shown in every scope (one per target account: its purpose,
    and its platform's own answer if it has one) on every one of ``days``?

    Each purpose needs its purpose-wide consent; a platform's own answer, where one
    was recorded, must say yes too. Default deny: no scope, no day, no show."""
    if standing is None:
        return Verdict(False, UNKNOWN)
    if not days or not scopes:
        return Verdict(False, NO_CONSENT)
    if not standing.on_roll or standing.never_publish:
        return Verdict(False, NO_CONSENT)
    used: list[ConsentRecord] = []
    for purpose, platform in dict.fromkeys(scopes):
        wide = standing.consents.get((purpose, None))
        if wide is None:
            return Verdict(False, NO_CONSENT)
        used.append(wide)
        if platform is not None and (purpose, platform) in standing.consents:
            used.append(standing.consents[(purpose, platform)])
    used = list(dict.fromkeys(used))
    failures = {r.state_on(d) for r in used for d in days} - {CONSENTED}
    for reason in _SEVERITY:
        if reason in failures:
            return Verdict(False, reason)
    return Verdict(True, CONSENTED, tuple(r.ref for r in used))


def still_current(
    standing: Standing | None,
    scopes: Sequence[Scope],
    day: date,
    approved_versions: Sequence[str],
) -> str | None:
    """None if the pupil approved as shown would be shown today on the same consent
    records; else why not (the verdict's reason, or ``changed`` when the records it
    rests on are not the approved ones)."""
    verdict = scoped_verdict(standing, scopes, [day])
    if not verdict.show:
        return verdict.reason
    if set(verdict.versions) != set(approved_versions):
        return "changed"
    return None


@dataclass(frozen=True)
class Nearest:
    """The closest enrolled pupil to a face and how close the runner-up pupil is."""

    pupil_id: str | None
    distance: float = float("inf")
    second_distance: float = float("inf")


@dataclass(frozen=True)
class Match:
    pupil_id: str | None
    reason: str  # matched | unknown | ambiguous


def classify(
    nearest: Nearest, tolerance: float = TOLERANCE, margin: float = MARGIN
) -> Match:
    """One pupil within ``tolerance`` and clearly closer than any other, else no one."""
    if nearest.pupil_id is None or not nearest.distance <= tolerance:
        return Match(None, UNKNOWN)
    if not nearest.second_distance - nearest.distance >= margin:
        return Match(None, AMBIGUOUS)
    return Match(nearest.pupil_id, "matched")


@dataclass(frozen=True)
class Decision:
    index: int
    show: bool
    pupil_id: str | None
    reason: str
    consent_versions: tuple[str, ...] = ()


def decide_face(
    index: int,
    match: Match,
    named: str | None,
    standings: Mapping[str, Standing],
    scopes: Sequence[Scope],
    days: Sequence[date],
) -> Decision:
    """The decision for one face: identified biometrically or named by an approver.

    A face named by an approver whose encoding confidently matches someone else is
    masked as ambiguous.
    """
    if named is not None:
        if match.pupil_id is not None and match.pupil_id != named:
            return Decision(index, False, None, AMBIGUOUS)
        pupil: str = named
    elif match.pupil_id is None:
        return Decision(index, False, None, match.reason)
    else:
        pupil = match.pupil_id
    verdict = scoped_verdict(standings.get(pupil), scopes, days)
    if not verdict.show:
        # A masked face leaves consent linked to nobody: a child whose parents said no
        # is not named to redaction, the approver or the audit trail.
        return Decision(index, False, None, verdict.reason)
    return Decision(index, True, pupil, CONSENTED, verdict.versions)


def default_expiry(school: School, on: date) -> date:
    """The end of the academic year containing ``on`` (31 August unless the school
    says otherwise)."""
    end = _safe_date(on.year, school.expiry_month, school.expiry_day)
    return (
        end
        if on <= end
        else _safe_date(on.year + 1, school.expiry_month, school.expiry_day)
    )


def _safe_date(year: int, month: int, day: int) -> date:
    while True:
        try:
            return date(year, month, day)
        except ValueError:
            day -= 1


# Biometric consent (Protection of Freedoms Act 2012 ss.26-28).


@dataclass(frozen=True)
class BiometricConsent:
    pupil_id: str
    status: str
    pupil_objects: bool = False
    version: int = 0

    @property
    def permits_enrolment(self) -> bool:
        """Written parental consent and no objection from the pupil."""
        return self.status == "granted" and not self.pupil_objects


def may_enrol(pupil: Pupil | None, biometric: BiometricConsent | None) -> str | None:
    """None if the pupil may be enrolled, else why not."""
    if pupil is None:
        return "no such pupil"
    if not pupil.on_roll:
        return "the pupil has left the school"
    if biometric is None or biometric.status != "granted":
        return "no written biometric consent"
    if biometric.pupil_objects:
        return "the pupil objects to biometric processing"
    return None


def valid_encoding(encoding: Sequence[float]) -> bool:
    return len(encoding) == ENCODING_DIMS and all(math.isfinite(x) for x in encoding)


# Never-publish (admins only; never revealed outside this service).


@dataclass(frozen=True)
class NeverPublish:
    active: bool
    category: str = ""
    note: str = ""
    version: int = 0
    recorded_by: str = ""
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class TakeDown:
    """The trust's choice for live posts of a pupil who left or whose consent
    expired: take them down, or keep what was published while consent was valid (the
    default; listed for the DPO). Withdrawal and never-publish always take them
    down."""

    on_leaving: bool = False
    on_expiry: bool = False


@dataclass(frozen=True)
class GridRow:
    """One pupil in the consent grid: who may appear where, at a glance."""

    pupil: Pupil
    standing: Standing
    biometric: BiometricConsent | None
    enrolled: int
