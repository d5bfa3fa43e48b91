from datetime import date

from services.consent import domain
from services.consent.bootstrap import handler_map
from services.consent.domain import PhotoConsent
from services.consent.handlers import decide_faces
from shared import contracts
from tests.unit.consent.fakes import (
    InMemoryConsentStore,
    InMemoryFaceGallery,
    fake_ports,
)

MONDAY = date(2025, 3, 3)


def faces_detected(*encodings: list[float] | None, publish_on: date | None = None):
    return contracts.FacesDetected(
        photo_id="photo-1",
        post_id="post-1",
        school_id="oakfield",
        width=100,
        height=100,
        publish_on=publish_on,
        faces=[
            contracts.DetectedFace(index=i, box=(0, 0, 10, 10), encoding=e)
            for i, e in enumerate(encodings)
        ],
    )


def decide(event, gallery=None, register=None):
    return decide_faces(
        event,
        gallery=gallery or InMemoryFaceGallery(),
        register=register or InMemoryConsentStore(),
        today=lambda: MONDAY,
    )


def test_with_no_enrolled_pupils_every_face_is_masked_as_unknown():
    event = faces_detected([0.1] * 128, [0.2] * 128, [0.3] * 128)

    [decided] = decide(event)

    assert [(d.index, d.show, d.reason) for d in decided.decisions] == [
        (0, False, "unknown"),
        (1, False, "unknown"),
        (2, False, "unknown"),
    ]
    assert (decided.photo_id, decided.post_id, decided.school_id) == (
        "photo-1",
        "post-1",
        "oakfield",
    )


def test_a_face_without_an_encoding_is_unknown_and_never_sent_to_the_gallery():
    gallery = InMemoryFaceGallery({0.5: "ada"})
    register = InMemoryConsentStore(PhotoConsent("ada", granted=True))

    [decided] = decide(faces_detected(None, [0.5] * 128), gallery, register)

    assert [(d.show, d.reason) for d in decided.decisions] == [
        (False, "unknown"),
        (True, "consented"),
    ]
    assert list(gallery.asked[0]) == [1]


def test_there_is_one_decision_per_incoming_face_and_none_missing():
    event = faces_detected(*([[0.1] * 128, None] * 20))

    [decided] = decide(event)

    assert sorted(d.index for d in decided.decisions) == list(range(40))
    assert not any(d.show for d in decided.decisions)


def test_a_photo_without_faces_gets_an_empty_decision():
    [decided] = decide(faces_detected())

    assert decided.decisions == []


def test_known_pupils_without_a_current_yes_are_masked_with_the_reason():
    gallery = InMemoryFaceGallery({1.0: "ada", 2.0: "bo", 3.0: "cy", 4.0: "di"})
    register = InMemoryConsentStore(
        PhotoConsent("ada", granted=True, version_ref="1:v1"),
        PhotoConsent("bo", granted=False),
        PhotoConsent("cy", granted=True, expires_on=date(2025, 1, 1)),
    )
    event = faces_detected([1.0], [2.0], [3.0], [4.0])

    [decided] = decide(event, gallery, register)

    assert [(d.pupil_id, d.show, d.reason) for d in decided.decisions] == [
        ("ada", True, "consented"),
        ("bo", False, "no_consent"),
        ("cy", False, "expired"),
        ("di", False, "no_consent"),
    ]
    assert decided.decisions[0].consent_versions == ["1:v1"]


def test_consent_must_also_hold_on_the_publication_day():
    gallery = InMemoryFaceGallery({1.0: "ada"})
    register = InMemoryConsentStore(
        PhotoConsent("ada", granted=True, withdrawn_on=date(2025, 3, 10))
    )

    [decided] = decide(
        faces_detected([1.0], publish_on=date(2025, 3, 12)), gallery, register
    )

    assert (decided.decisions[0].show, decided.decisions[0].reason) == (
        False,
        "withdrawn",
    )


def test_faces_to_show_denies_by_default():
    matches = {0: "ada", 1: None, 2: "ghost"}
    consents = {"ada": PhotoConsent("ada", granted=True)}

    assert domain.faces_to_show(matches, consents, MONDAY) == {0: "ada"}


def test_the_handler_map_binds_faces_detected_to_decide_faces():
    handlers = handler_map(fake_ports())

    [decided] = handlers[contracts.FacesDetected](faces_detected([0.1]))

    assert decided.decisions[0].reason == "unknown"
