from services.redaction import domain
from services.redaction.domain import Decision, Face


def test_a_box_grows_about_its_centre():
    grown = domain.enlarge((100, 100, 200, 200), 1000, 1000, factor=1.3)

    assert grown == (85, 85, 215, 215)


def test_a_grown_box_stays_inside_the_image():
    grown = domain.enlarge((0, 5, 40, 50), 45, 52, factor=1.5)

    assert grown == (0, 0, 45, 52)


def test_clipping_rounds_outwards_so_nothing_of_the_box_is_lost():
    assert domain.clip((10.2, 20.7, 30.1, 40.9), 100, 100) == (10, 20, 31, 41)


def test_the_long_side_is_limited_and_the_aspect_kept():
    assert domain.output_size(4000, 3000, 2048) == (2048, 1536)
    assert domain.output_size(1000, 3000, 2048) == (683, 2048)
    assert domain.output_size(800, 600, 2048) == (800, 600)


def test_a_scaled_box_still_covers_the_same_region():
    box = domain.scale_box((101, 51, 203, 153), 0.5, 0.5, 500, 500)

    assert box == (50, 25, 102, 77)


def test_a_face_without_a_decision_is_masked_as_unknown():
    faces = [Face(0, (10, 10, 20, 20), 0.9)]

    [outcome] = domain.decide_masks(faces, [], source=(100, 100), target=(100, 100))

    assert outcome.masked
    assert outcome.reason == "unknown"


def test_only_faces_decided_show_are_left_visible():
    faces = [Face(i, (10 * i, 0, 10 * i + 8, 8), 0.9) for i in range(3)]
    decisions = [
        Decision(0, show=True, reason="consented", pupil_id="ada"),
        Decision(1, show=False, reason="no_consent", pupil_id="bo"),
    ]

    outcomes = domain.decide_masks(
        faces, decisions, source=(100, 100), target=(100, 100)
    )

    assert [(o.masked, o.reason, o.pupil_id) for o in outcomes] == [
        (False, None, "ada"),
        (True, "no_consent", "bo"),
        (True, "unknown", None),
    ]


def test_a_masked_face_covers_its_enlarged_box_in_output_pixels():
    faces = [Face(0, (1000, 1000, 1200, 1200), 0.9)]

    [outcome] = domain.decide_masks(
        faces, [], source=(4096, 3072), target=(2048, 1536), growth=1.3
    )

    assert outcome.box == (485, 485, 615, 615)


def test_a_shown_face_reports_its_detected_box():
    faces = [Face(0, (100, 100, 200, 200), 0.9)]
    decisions = [Decision(0, show=True, reason="consented", pupil_id="ada")]

    [outcome] = domain.decide_masks(
        faces, decisions, source=(400, 400), target=(400, 400)
    )

    assert outcome.box == (100, 100, 200, 200)
