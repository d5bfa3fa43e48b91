"""CSV import and export of pupils and consents. Pure: bytes in, rows out.

The format is documented in docs/architecture.md ("Consent"). A file is accepted whole
or not at all: every problem is reported with its line number and nothing changes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from services.consent import domain

MAX_ROWS = 100_000
# Header names as typical MIS exports (SIMS, Arbor, Bromcom) spell them, normalised
# (lower case, runs of other characters as "_").
ALIASES: dict[str, tuple[str, ...]] = {
    "pupil_id": (
        "pupil_id",
        "upn",
        "unique_pupil_number",
        "mis_id",
        "pupil_mis_id",
        "student_id",
        "admission_number",
        "adno",
        "id",
    ),
    "forename": ("forename", "legal_forename", "first_name", "firstname", "given_name"),
    "surname": ("surname", "legal_surname", "last_name", "lastname", "family_name"),
    "preferred_name": (
        "preferred_name",
        "preferred_forename",
        "known_as",
        "chosen_name",
    ),
    "class_name": (
        "class",
        "class_name",
        "reg_group",
        "registration_group",
        "form",
        "tutor_group",
    ),
    "year_group": ("year_group", "year", "nc_year", "ncyear", "curriculum_year"),
    "left_on": ("left_on", "leaving_date", "date_of_leaving", "leave_date"),
    "expires_on": ("expires_on", "consent_expires", "consent_expiry", "expiry_date"),
    "given_by": ("given_by", "consent_given_by", "contact_name", "parent_name"),
    "relationship": ("relationship", "contact_relationship"),
    "evidence_ref": ("evidence_ref", "evidence", "form_reference"),
    "biometric_consent": ("biometric_consent", "biometrics", "biometric"),
    "biometric_objection": ("biometric_objection", "pupil_objects", "pupil_objection"),
}
for _purpose in domain.PURPOSES:
    ALIASES[f"{_purpose}_consent"] = (
        f"{_purpose}_consent",
        _purpose,
        f"photo_consent_{_purpose}",
        f"{_purpose}_photo_consent",
    )
ALIASES["press_consent"] += ("newsletter_consent", "press_newsletter_consent")
REQUIRED = ("pupil_id", "forename", "surname")

_YES = {"yes", "y", "true", "1", "granted", "given", "consented", "agreed"}
_NO = {"no", "n", "false", "0", "refused", "declined", "not_given"}
_WITHDRAWN = {"withdrawn"}
_NOT_RETURNED = {"", "not_returned", "not_received", "unknown", "pending", "missing"}
# A spreadsheet treats a cell starting with these as a formula.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ImportRow:
    line: int
    pupil: domain.Pupil
    consents: dict[str, str] = field(default_factory=dict)  # purpose -> status
    biometric: str | None = None
    pupil_objects: bool = False
    expires_on: date | None = None
    given_by: str = ""
    relationship: str = ""
    evidence_ref: str = ""


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    pupils_added: int = 0
    pupils_updated: int = 0
    pupils_unchanged: int = 0
    consents_changed: int = 0
    biometric_changed: int = 0
    encodings_deleted: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "pupils_added": self.pupils_added,
            "pupils_updated": self.pupils_updated,
            "pupils_unchanged": self.pupils_unchanged,
            "consents_changed": self.consents_changed,
            "biometric_changed": self.biometric_changed,
            "encodings_deleted": self.encodings_deleted,
            "applied": self.applied,
            "errors": [{"line": e.line, "message": e.message} for e in self.errors],
        }


class CsvFileError(Exception):
    """The file as a whole cannot be read (encoding, no header, too big)."""


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM; anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CsvFileError(f"the file is not valid UTF-16: {exc.reason}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvFileError(
            f"line {line}: the file is not UTF-8 (save it as 'CSV UTF-8'; byte "
            f"0x{data[exc.start]:02x} is not valid)"
        ) from None


def parse_with_errors(
    data: bytes, school: domain.School, today: date
) -> tuple[list[ImportRow], list[RowError]]:
    """The rows of a pupils-and-consents CSV and every row's error (line numbers).

    Raises CsvFileError when the file cannot be read at all.
    """
    text = decode(data)
    if "\x00" in text:
        raise CsvFileError("the file contains NUL bytes: it is not a CSV file")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("the file is empty") from None
    except csv.Error as exc:
        raise CsvFileError(f"line 1: {exc}") from None
    columns = _columns(header)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise CsvFileError(
            "line 1: missing column(s) " + ", ".join(missing) + " (see the format)"
        )
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(reader.line_num, str(exc)))
            break
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(rows) + len(errors) >= MAX_ROWS:
            raise CsvFileError(f"more than {MAX_ROWS} rows: split the file")
        record = {name: _cell(cells, i) for name, i in columns.items()}
        try:
            row = _row(line, record, school, today)
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        first = seen.setdefault(row.pupil.pupil_id, line)
        if first != line:
            errors.append(
                RowError(line, f"pupil id {row.pupil.pupil_id} repeats line {first}")
            )
            continue
        rows.append(row)
    return rows, errors


def _columns(header: Sequence[str]) -> dict[str, int]:
    keys = [_key(h) for h in header]
    found: dict[str, int] = {}
    for name, aliases in ALIASES.items():
        for alias in aliases:
            if alias in keys:
                found[name] = keys.index(alias)
                break
    return found


def _cell(cells: Sequence[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def _row(line: int, r: dict[str, str], school: domain.School, today: date) -> ImportRow:
    pupil_id = r["pupil_id"]
    if not domain.PUPIL_ID.match(pupil_id):
        raise ValueError(
            f"pupil id {pupil_id[:40]!r} must be 1-64 of letters, digits and ._/-"
        )
    for name, limit in (("forename", 100), ("surname", 100)):
        if not r[name]:
            raise ValueError(f"{name} is empty")
        if len(r[name]) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    for name, limit in (
        ("preferred_name", 100),
        ("class_name", 40),
        ("year_group", 20),
        ("given_by", 200),
        ("relationship", 40),
        ("evidence_ref", 200),
    ):
        if len(r.get(name, "")) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    left_on = _date(r.get("left_on", ""), "left_on")
    consents = {
        purpose: _status(r[f"{purpose}_consent"], f"{purpose}_consent")
        for purpose in domain.PURPOSES
        if f"{purpose}_consent" in r
    }
    biometric = (
        _status(r["biometric_consent"], "biometric_consent")
        if "biometric_consent" in r
        else None
    )
    objects = _status(r.get("biometric_objection", ""), "biometric_objection")
    expires_on = _date(r.get("expires_on", ""), "expires_on")
    return ImportRow(
        line=line,
        pupil=domain.Pupil(
            school_slug=school.slug,
            pupil_id=pupil_id,
            forename=r["forename"],
            surname=r["surname"],
            year_group=r.get("year_group", ""),
            class_name=r.get("class_name", ""),
            on_roll=left_on is None or left_on > today,
            left_on=left_on,
            preferred_name=r.get("preferred_name", ""),
        ),
        consents=consents,
        biometric=biometric,
        pupil_objects=objects == "granted",
        expires_on=expires_on or domain.default_expiry(school, today),
        given_by=r.get("given_by", ""),
        relationship=r.get("relationship", ""),
        evidence_ref=r.get("evidence_ref", ""),
    )


def _status(value: str, column: str) -> str:
    v = _key(value)
    if v in _YES:
        return "granted"
    if v in _NO:
        return "refused"
    if v in _WITHDRAWN:
        return "withdrawn"
    if v in _NOT_RETURNED:
        return "not_returned"
    raise ValueError(f"{column}: {value[:40]!r} is not yes, no, withdrawn or blank")


def _date(value: str, column: str) -> date | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(
        f"{column}: {value[:40]!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)"
    )


# Export.

EXPORT_COLUMNS = (
    "pupil_id",
    "forename",
    "surname",
    "preferred_name",
    "year_group",
    "class",
    "left_on",
    *(f"{p}_consent" for p in domain.PURPOSES),
    "biometric_consent",
)


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA) else value


def export(rows: Iterable[Sequence[str]]) -> str:
    """CSV text (UTF-8, excel dialect) with formula-like cells neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, dialect=csv.excel)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(str(c)) for c in row])
    return out.getvalue()


def yes_no(status: str | None) -> str:
    return {
        "granted": "yes",
        "refused": "no",
        "withdrawn": "withdrawn",
        "not_returned": "",
    }.get(status or "", "")


def export_row(
    pupil: domain.Pupil,
    wide: Sequence[domain.ConsentRecord | None],
    biometric: domain.BiometricConsent | None,
) -> list[str]:
    """One pupil's export row (``wide``: the purpose-wide record of each purpose)."""
    return [
        pupil.pupil_id,
        pupil.forename,
        pupil.surname,
        pupil.preferred_name,
        pupil.year_group,
        pupil.class_name,
        pupil.left_on.isoformat() if pupil.left_on else "",
        *(yes_no(c.status if c else None) for c in wide),
        yes_no(biometric.status if biometric else None),
    ]
