from datetime import date

from services.consent import domain
from services.consent.bootstrap import Ports, handler_map
from services.consent.handlers import decide_faces
from shared import contracts
from tests.support.bus import InMemoryBus
from tests.support.uow import FakeUnit
from tests.unit.consent.fakes import (
    MONDAY,
    InMemoryFaceGallery,
    InMemoryRegister,
    InMemoryTargetAccounts,
)

END = date(2025, 8, 31)


def consented(pupil, expires=END, never_publish=False, platforms=()):
    consents = {
        ("social_media", None): domain.ConsentRecord(
            pupil, "social_media", None, "granted", 1, record_id=7, expires_on=expires
        )
    }
    for platform, status in platforms:
        consents[("social_media", platform)] = domain.ConsentRecord(
            pupil, "social_media", platform, status, 1, record_id=8, expires_on=expires
        )
    return domain.Standing(pupil, never_publish=never_publish, consents=consents)


def faces_detected(
    *encodings, publish_on=None, named=None, platforms=("newsroom",), texts=()
):
    """Target accounts named after their platforms (see InMemoryTargetAccounts)."""
    return contracts.FacesDetected(
        photo_id="photo-1",
        post_id="post-1",
        school_id="oakfield",
        accounts=list(platforms),
        width=100,
        height=100,
        publish_on=publish_on,
        named=named or {},
        revision=2,
        faces=[
            contracts.DetectedFace(index=i, box=(0, 0, 10, 10), encoding=e)
            for i, e in enumerate(encodings)
        ],
        texts=[
            contracts.DetectedText(index=i, box=(0, 0, 5, 5), text=t)
            for i, t in enumerate(texts)
        ],
    )


def enc(value):
    return [value] * 128


ADA_NEAR = domain.Nearest("ada", 0.3, 0.9)


def decide(event, gallery=None, register=None, accounts=None):
    register = register or InMemoryRegister()
    [decided] = decide_faces(
        event,
        gallery=gallery or InMemoryFaceGallery(),
        register=register,
        names=register,
        accounts=accounts or InMemoryTargetAccounts(),
        today=lambda: MONDAY,
    )
    return decided


def summary(decided):
    return [(d.index, d.show, d.pupil_id, d.reason) for d in decided.decisions]


def test_with_no_enrolled_pupils_every_face_is_masked_as_unknown():
    decided = decide(faces_detected(enc(0.1), enc(0.2), enc(0.3)))

    assert summary(decided) == [
        (0, False, None, "unknown"),
        (1, False, None, "unknown"),
        (2, False, None, "unknown"),
    ]
    assert (decided.photo_id, decided.post_id, decided.school_id, decided.revision) == (
        "photo-1",
        "post-1",
        "oakfield",
        2,
    )


def test_an_identified_pupil_with_current_consent_is_shown_with_the_versions_used():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})

    decided = decide(
        faces_detected(enc(0.5), enc(0.1)), gallery, InMemoryRegister(consented("ada"))
    )

    assert summary(decided) == [
        (0, True, "ada", "consented"),
        (1, False, None, "unknown"),
    ]
    assert decided.decisions[0].consent_versions == ["7:social_media/*:v1"]


def test_a_face_close_to_two_pupils_is_masked_as_ambiguous():
    gallery = InMemoryFaceGallery({0.5: domain.Nearest("ada", 0.30, 0.33)})

    decided = decide(
        faces_detected(enc(0.5)), gallery, InMemoryRegister(consented("ada"))
    )

    assert summary(decided) == [(0, False, None, "ambiguous")]


def test_a_face_without_an_encoding_is_unknown_and_never_sent_to_the_gallery():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})

    decided = decide(
        faces_detected(None, enc(0.5)), gallery, InMemoryRegister(consented("ada"))
    )

    assert summary(decided)[0] == (0, False, None, "unknown")
    assert list(gallery.asked[0]) == [1]


def test_consent_expiring_before_the_publish_date_masks_the_face():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada", expires=date(2025, 6, 30)))

    decided = decide(
        faces_detected(enc(0.5), publish_on=date(2025, 7, 1)), gallery, register
    )

    assert summary(decided) == [(0, False, None, "expired")]


def test_a_publish_date_in_the_past_still_needs_consent_today():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada", expires=date(2025, 3, 1)))

    decided = decide(
        faces_detected(enc(0.5), publish_on=date(2025, 2, 1)), gallery, register
    )

    assert summary(decided) == [(0, False, None, "expired")]


def test_one_refused_platform_masks_the_face_for_a_post_to_several():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada", platforms=[("x", "refused")]))

    on_facebook = decide(
        faces_detected(enc(0.5), platforms=["facebook"]), gallery, register
    )
    on_both = decide(
        faces_detected(enc(0.5), platforms=["facebook", "x"]), gallery, register
    )

    assert summary(on_facebook) == [(0, True, "ada", "consented")]
    assert summary(on_both) == [(0, False, None, "no_consent")]


def test_never_publish_is_reported_as_no_consent():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada", never_publish=True))

    decided = decide(faces_detected(enc(0.5)), gallery, register)

    assert summary(decided) == [(0, False, None, "no_consent")]
    assert decided.decisions[0].consent_versions == []


def test_a_face_named_by_an_approver_is_shown_only_with_that_pupils_consent():
    register = InMemoryRegister(consented("ada"), consented("bob", never_publish=True))

    decided = decide(
        faces_detected(None, None, None, named={0: "ada", 1: "bob", 2: "nobody"}),
        register=register,
    )

    assert summary(decided) == [
        (0, True, "ada", "consented"),
        (1, False, None, "no_consent"),
        (2, False, None, "unknown"),
    ]


def test_a_named_face_that_the_gallery_says_is_someone_else_is_masked():
    gallery = InMemoryFaceGallery({0.5: domain.Nearest("cy", 0.3, 0.9)})
    register = InMemoryRegister(consented("ada"), consented("cy"))

    decided = decide(faces_detected(enc(0.5), named={0: "ada"}), gallery, register)

    assert summary(decided) == [(0, False, None, "ambiguous")]


def test_text_with_a_pupil_surname_is_masked_and_other_text_flagged():
    register = InMemoryRegister(surnames=["Lovelace"])

    decided = decide(
        faces_detected(texts=["Ada LOVELACE", "Sports day"]), register=register
    )

    assert [(t.index, t.mask, t.reason) for t in decided.texts] == [
        (0, True, "pupil_name"),
        (1, False, "readable_text"),
    ]


def test_the_decision_never_carries_names():
    register = InMemoryRegister(consented("ada"), surnames=["Lovelace"])

    decided = decide(
        faces_detected(texts=["Ada Lovelace"], named={}), register=register
    )

    assert "Lovelace" not in decided.model_dump_json()


def test_the_handler_map_binds_faces_detected(tmp_path):
    register = InMemoryRegister()
    bus = InMemoryBus()
    accounts = InMemoryTargetAccounts()
    ports = Ports(
        gallery=InMemoryFaceGallery(),
        register=register,
        names=register,
        accounts=accounts,
        views=None,  # type: ignore[arg-type]
        unit=lambda: FakeUnit(bus, "consent", accounts=accounts),
        relayed_unit=lambda: FakeUnit(bus, "consent"),
    )

    handlers = handler_map(ports)

    assert handlers[contracts.FacesDetected](faces_detected(enc(0.1))) == []
    [decided] = bus.messages()
    assert summary(decided) == [(0, False, None, "unknown")]


# Consent per target account (issue 8 section 0).


def test_the_platforms_come_from_the_accounts_not_the_message():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada", platforms=[("facebook", "refused")]))
    # The uploader's form cannot say "website" for a Facebook account: the message's
    # platforms are ignored, the account decides.
    event = faces_detected(enc(0.5), platforms=["facebook"]).model_copy(
        update={"platforms": ["website"]}
    )

    assert summary(decide(event, gallery, register)) == [(0, False, None, "no_consent")]


def test_refused_on_one_platform_of_two_target_accounts_masks_the_pupil():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada", platforms=[("facebook", "refused")]))

    on_instagram = decide(
        faces_detected(enc(0.5), platforms=["instagram"]), gallery, register
    )
    on_both = decide(
        faces_detected(enc(0.5), platforms=["instagram", "facebook"]), gallery, register
    )

    assert summary(on_instagram) == [(0, True, "ada", "consented")]
    assert summary(on_both) == [(0, False, None, "no_consent")]


def test_a_website_account_needs_website_consent():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada"))

    decided = decide(faces_detected(enc(0.5), platforms=["website"]), gallery, register)

    assert summary(decided) == [(0, False, None, "no_consent")]


def test_an_account_consent_was_never_told_of_masks_every_face():
    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada"))

    unknown = decide(
        faces_detected(enc(0.5), platforms=["facebook", "mystery"]), gallery, register
    )
    none = decide(faces_detected(enc(0.5), platforms=[]), gallery, register)

    assert summary(unknown) == [(0, False, None, "unknown_account")]
    assert summary(none) == [(0, False, None, "unknown_account")]


def test_another_schools_account_is_unknown_here():
    from services.consent.domain import TargetAccount

    gallery = InMemoryFaceGallery({0.5: ADA_NEAR})
    register = InMemoryRegister(consented("ada"))
    accounts = InMemoryTargetAccounts(
        [
            TargetAccount(
                "rs-fb", "riverside", "facebook", "social_media", "facebook", "active"
            )
        ]
    )

    decided = decide(
        faces_detected(enc(0.5), platforms=["rs-fb"]), gallery, register, accounts
    )

    assert summary(decided) == [(0, False, None, "unknown_account")]
