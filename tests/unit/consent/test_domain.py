from datetime import date

import pytest

from services.consent import domain, names
from services.consent.domain import (
    BiometricConsent,
    ConsentRecord,
    Nearest,
    Pupil,
    School,
    Standing,
)

DAY = date(2025, 3, 3)
JULY = date(2025, 7, 1)
END = date(2025, 8, 31)


def record(status="granted", platform=None, purpose="social_media", expires=END, v=1):
    return ConsentRecord(
        "P1", purpose, platform, status, v, record_id=v, expires_on=expires
    )


def standing(*records, on_roll=True, never_publish=False):
    return Standing(
        "P1",
        on_roll=on_roll,
        never_publish=never_publish,
        consents={(r.purpose, r.platform): r for r in records},
    )


# status x expiry x purpose x platform x never-publish x roll
CASES = [
    # (records, kwargs, purpose, platforms, days, show, reason)
    ([record()], {}, "social_media", [], [DAY], True, "consented"),
    ([record()], {}, "social_media", ["facebook"], [DAY], True, "consented"),
    ([record()], {}, "social_media", ["facebook", "x"], [DAY, JULY], True, "consented"),
    ([record("refused")], {}, "social_media", [], [DAY], False, "no_consent"),
    ([record("not_returned")], {}, "social_media", [], [DAY], False, "no_consent"),
    ([record("withdrawn")], {}, "social_media", [], [DAY], False, "withdrawn"),
    (
        [record(expires=date(2025, 3, 2))],
        {},
        "social_media",
        [],
        [DAY],
        False,
        "expired",
    ),
    ([record(expires=DAY)], {}, "social_media", [], [DAY], True, "consented"),
    ([record(expires=None)], {}, "social_media", [], [DAY], False, "expired"),
    (
        [record(expires=date(2025, 6, 1))],
        {},
        "social_media",
        [],
        [DAY, JULY],
        False,
        "expired",
    ),
    ([record()], {}, "website", [], [DAY], False, "no_consent"),
    ([record(purpose="website")], {}, "social_media", [], [DAY], False, "no_consent"),
    (
        [record(), record("refused", "x")],
        {},
        "social_media",
        ["facebook"],
        [DAY],
        True,
        "consented",
    ),
    (
        [record(), record("refused", "x")],
        {},
        "social_media",
        ["facebook", "x"],
        [DAY],
        False,
        "no_consent",
    ),
    (
        [record(), record("withdrawn", "x")],
        {},
        "social_media",
        ["x"],
        [DAY],
        False,
        "withdrawn",
    ),
    (
        [record(), record("granted", "x", expires=date(2025, 1, 1))],
        {},
        "social_media",
        ["x"],
        [DAY],
        False,
        "expired",
    ),
    (
        [record("refused"), record("granted", "x")],
        {},
        "social_media",
        ["x"],
        [DAY],
        False,
        "no_consent",
    ),
    ([record("granted", "x")], {}, "social_media", ["x"], [DAY], False, "no_consent"),
    (
        [record()],
        {"never_publish": True},
        "social_media",
        [],
        [DAY],
        False,
        "no_consent",
    ),
    ([record()], {"on_roll": False}, "social_media", [], [DAY], False, "no_consent"),
    (
        [record("withdrawn"), record("refused", "x")],
        {},
        "social_media",
        ["x"],
        [DAY],
        False,
        "withdrawn",
    ),
    (
        [record(expires=date(2025, 1, 1)), record("refused", "x")],
        {},
        "social_media",
        ["x"],
        [DAY],
        False,
        "no_consent",
    ),
    ([record()], {}, "social_media", [], [], False, "no_consent"),
]


@pytest.mark.parametrize(
    ("records", "kwargs", "purpose", "platforms", "days", "show", "reason"), CASES
)
def test_a_pupil_is_shown_only_with_current_consent_for_the_purpose_and_every_platform(
    records, kwargs, purpose, platforms, days, show, reason
):
    verdict = domain.photo_verdict(
        standing(*records, **kwargs), purpose, platforms, days
    )

    assert (verdict.show, verdict.reason) == (show, reason)


def test_a_shown_verdict_cites_every_consent_version_it_used():
    records = [record(v=3), record("granted", "x", v=2)]

    verdict = domain.photo_verdict(standing(*records), "social_media", ["x"], [DAY])

    assert verdict.versions == ("3:social_media/*:v3", "2:social_media/x:v2")


def test_an_unknown_pupil_is_unknown():
    assert domain.photo_verdict(None, "social_media", [], [DAY]).reason == "unknown"


@pytest.mark.parametrize(
    ("nearest", "pupil", "reason"),
    [
        (Nearest(None), None, "unknown"),
        (Nearest("A", 0.30, 0.80), "A", "matched"),
        (Nearest("A", 0.45, 0.80), "A", "matched"),
        (Nearest("A", 0.46, 0.90), None, "unknown"),
        (Nearest("A", 0.55, 0.90), None, "unknown"),
        (Nearest("A", 0.30, 0.39), None, "ambiguous"),
        (Nearest("A", 0.30, 0.40), "A", "matched"),
        (Nearest("A", 0.30, 0.35), None, "ambiguous"),
        (Nearest("A", float("nan"), 0.9), None, "unknown"),
        (Nearest("A", 0.2), "A", "matched"),
    ],
)
def test_a_face_matches_one_pupil_within_tolerance_with_a_clear_margin(
    nearest, pupil, reason
):
    assert domain.classify(nearest) == domain.Match(pupil, reason)


def test_the_tolerance_is_stricter_than_face_recognitions_default():
    assert domain.TOLERANCE < 0.6


CONSENTED = {"P1": standing(record())}
REFUSED = {"P1": standing(record("refused"))}


@pytest.mark.parametrize(
    ("match", "named", "standings", "show", "pupil", "reason"),
    [
        (domain.Match("P1", "matched"), None, CONSENTED, True, "P1", "consented"),
        (domain.Match("P1", "matched"), None, REFUSED, False, None, "no_consent"),
        (domain.Match(None, "unknown"), None, CONSENTED, False, None, "unknown"),
        (domain.Match(None, "ambiguous"), None, CONSENTED, False, None, "ambiguous"),
        (domain.Match(None, "unknown"), "P1", CONSENTED, True, "P1", "consented"),
        (domain.Match("P1", "matched"), "P1", CONSENTED, True, "P1", "consented"),
        (domain.Match("P2", "matched"), "P1", CONSENTED, False, None, "ambiguous"),
        (domain.Match(None, "unknown"), "P9", CONSENTED, False, None, "unknown"),
        (domain.Match(None, "unknown"), "P1", REFUSED, False, None, "no_consent"),
    ],
)
def test_a_face_is_decided_from_its_match_or_the_approvers_naming(
    match, named, standings, show, pupil, reason
):
    d = domain.decide_face(0, match, named, standings, [("social_media", None)], [DAY])

    assert (d.show, d.pupil_id, d.reason) == (show, pupil, reason)


def test_a_never_publish_pupil_named_by_an_approver_is_reported_as_no_consent():
    standings = {"P1": standing(record(), never_publish=True)}

    d = domain.decide_face(
        0,
        domain.Match(None, "unknown"),
        "P1",
        standings,
        [("social_media", None)],
        [DAY],
    )

    assert (d.show, d.reason, d.consent_versions) == (False, "no_consent", ())


ADA = Pupil("oak", "P1", "Ada", "Lovelace")


@pytest.mark.parametrize(
    ("pupil", "bio", "allowed"),
    [
        (ADA, BiometricConsent("P1", "granted"), True),
        (ADA, BiometricConsent("P1", "granted", pupil_objects=True), False),
        (ADA, BiometricConsent("P1", "refused"), False),
        (ADA, BiometricConsent("P1", "withdrawn"), False),
        (ADA, BiometricConsent("P1", "not_returned"), False),
        (ADA, None, False),
        (
            Pupil("oak", "P1", "Ada", "Lovelace", on_roll=False),
            BiometricConsent("P1", "granted"),
            False,
        ),
        (None, BiometricConsent("P1", "granted"), False),
    ],
)
def test_only_pupils_with_written_biometric_consent_and_no_objection_may_be_enrolled(
    pupil, bio, allowed
):
    assert (domain.may_enrol(pupil, bio) is None) is allowed


NAMES = names.NameIndex.of(
    [
        Pupil("oak", "1", "Ada", "Lovelace"),
        Pupil("oak", "2", "Zoë", "Núñez"),
        Pupil("oak", "3", "Li", "Ng"),
        Pupil("oak", "4", "Maria", "de la Cruz"),
    ]
)


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("Ada Lovelace", True),
        ("ADA LOVELACE", True),
        ("lovelace", True),
        ("Well done, Ada  Lovelace!", True),
        ("Ada Love lace", True),
        ("AdaLovelace", True),
        ("L0VE1ACE", True),
        ("Lovelace.", True),
        ("Lovelacx", True),
        ("Zoe Nunez", True),
        ("NUNEZ", True),
        ("Li Ng", True),
        ("Maria De La Cruz", True),
        ("Sports Day 2025", False),
        ("Ada", False),
        ("Oakfield Primary", False),
        ("", False),
        ("ng", True),
        ("wrong", False),
    ],
)
def test_text_showing_a_pupils_surname_is_masked(text, mask):
    assert names.mentions_pupil(text, NAMES) is mask


def test_text_is_masked_with_a_reason_or_flagged_as_readable():
    assert names.text_verdict("Ada Lovelace", NAMES) == (True, "pupil_name")
    assert names.text_verdict("Sports day", NAMES) == (False, "readable_text")


@pytest.mark.parametrize(
    ("school", "on", "expires"),
    [
        (School("oak", "Oak"), date(2025, 3, 3), date(2025, 8, 31)),
        (School("oak", "Oak"), date(2025, 8, 31), date(2025, 8, 31)),
        (School("oak", "Oak"), date(2025, 9, 1), date(2026, 8, 31)),
        (School("oak", "Oak", 7, 31), date(2025, 8, 1), date(2026, 7, 31)),
        (School("oak", "Oak", 2, 30), date(2024, 1, 1), date(2024, 2, 29)),
    ],
)
def test_consent_lasts_to_the_end_of_the_schools_academic_year(school, on, expires):
    assert domain.default_expiry(school, on) == expires


# Consent per target account (issue 8 section 0): each account's purpose and
# platform, the platform's own answer narrowing the purpose-wide one.

FB = ("social_media", "facebook")
WEB = ("website", None)


def test_a_pupil_refused_on_one_platform_of_two_is_not_shown():
    records = (
        record(),
        record(platform="facebook", status="refused", v=2),
    )

    verdict = domain.scoped_verdict(
        standing(*records), [("social_media", "instagram"), FB], [DAY]
    )

    assert (verdict.show, verdict.reason) == (False, "no_consent")


def test_each_purpose_of_the_targets_needs_its_own_consent():
    only_social = standing(record())

    assert domain.scoped_verdict(only_social, [FB], [DAY]).show
    assert not domain.scoped_verdict(only_social, [FB, WEB], [DAY]).show


def test_no_scope_shows_nobody():
    assert not domain.scoped_verdict(standing(record()), [], [DAY]).show


def test_a_decision_is_still_current_only_on_the_same_records():
    before = standing(record())
    approved = domain.scoped_verdict(before, [FB], [DAY]).versions
    withdrawn = standing(record(status="withdrawn", v=2))
    narrowed = standing(record(), record(platform="facebook", v=3))

    assert domain.still_current(before, [FB], DAY, approved) is None
    assert domain.still_current(withdrawn, [FB], DAY, approved) == "withdrawn"
    assert domain.still_current(narrowed, [FB], DAY, approved) == "changed"
    assert domain.still_current(None, [FB], DAY, approved) == "unknown"
