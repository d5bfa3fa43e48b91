"""The approver's view: warnings, who is shown and why, edits and re-rendering."""

from __future__ import annotations

from services.approval import domain
from shared import contracts
from tests.unit.approval.builders import (
    APPROVER,
    AUTHOR,
    TEACHER,
    a_rig,
    an_identity,
    awaiting,
    bearer,
    decision,
    redacted,
    seen,
    submitted,
)


def revise(rig, body, identity=APPROVER, photo="ph1"):
    return rig.client().post(
        f"/api/posts/p1/photos/{photo}/revisions", json=body, headers=bearer(identity)
    )


def newer(revision: int, **changes) -> contracts.PhotoRedacted:
    return redacted().model_copy(
        update={
            "revision": revision,
            "redacted_key": f"redacted/p1/ph1-r{revision}.jpg",
            "preview_key": f"previews/p1/ph1-r{revision}.jpg",
            **changes,
        }
    )


def sent_revisions(rig) -> list[contracts.ReviseRedaction]:
    return rig.bus.messages(contracts.ReviseRedaction)  # type: ignore[return-value]


def test_an_approver_adds_a_mask_and_redaction_is_asked_for_revision_one():
    rig = a_rig()
    awaiting(rig)

    res = revise(rig, {"add_masks": [[10, 10, 40, 40]], "named": {"0": "pupil-9"}})

    assert res.status_code == 202 and res.get_json()["revision"] == 1
    [command] = sent_revisions(rig)
    assert (command.revision, command.add_masks, command.named) == (
        1,
        [(10, 10, 40, 40)],
        {0: "pupil-9"},
    )
    assert command.requested_by == APPROVER.user_id


def test_while_re_rendering_the_post_cannot_be_approved_but_can_be_rejected():
    rig = a_rig()
    awaiting(rig)
    revise(rig, {"add_masks": [[10, 10, 40, 40]]})
    [command] = sent_revisions(rig)
    rig.handle(command)

    approve = rig.client().post(
        "/api/posts/p1/decision",
        json={"approve": True, "seen": seen(rig)},
        headers=bearer(APPROVER),
    )
    reject = rig.client().post(
        "/api/posts/p1/decision",
        json={"approve": False, "reason": "wrong photo"},
        headers=bearer(APPROVER),
    )

    assert approve.status_code == 409
    assert approve.get_json()["error"] == "rerendering"
    assert reject.status_code == 200
    [refusal] = rig.handle(decision())  # the worker refuses it too
    assert isinstance(refusal, contracts.DecisionRefused)


def test_the_newest_revision_arriving_allows_approval_of_exactly_it():
    rig = a_rig()
    awaiting(rig)
    revise(rig, {"add_masks": [[10, 10, 40, 40]]})
    rig.handle(sent_revisions(rig)[0])

    rig.handle(newer(1, sha256="c" * 64))
    [approved] = rig.handle(decision())

    assert approved.images[0].redacted_key == "redacted/p1/ph1-r1.jpg"
    assert approved.images[0].sha256 == "c" * 64


def test_an_older_revision_arriving_late_never_replaces_the_newest():
    rig = a_rig()
    awaiting(rig)
    rig.handle(newer(2))

    rig.handle(newer(1))
    rig.handle(redacted())

    assert rig.reports.for_post("p1")["ph1"].revision == 2


def test_a_second_edit_asks_for_the_next_revision():
    rig = a_rig()
    awaiting(rig)
    revise(rig, {"add_masks": [[10, 10, 40, 40]]})
    rig.handle(sent_revisions(rig)[0])

    revise(rig, {"add_masks": [[50, 50, 60, 60]]})

    assert [c.revision for c in sent_revisions(rig)] == [1, 2]


def test_nobody_edits_their_own_post():
    rig = a_rig()
    awaiting(rig)
    author = an_identity(("north", "approver"), user_id=AUTHOR)

    res = revise(rig, {"add_masks": [[10, 10, 40, 40]]}, identity=author)

    assert res.status_code == 403
    assert sent_revisions(rig) == []


def test_a_teacher_cannot_edit_the_redaction():
    rig = a_rig()
    awaiting(rig)

    assert (
        revise(rig, {"add_masks": [[1, 1, 5, 5]]}, identity=TEACHER).status_code == 403
    )


def test_bad_edits_are_refused_with_a_reason():
    rig = a_rig()
    awaiting(rig)

    outside = revise(rig, {"add_masks": [[10, 10, 400, 40]]})
    nothing = revise(rig, {})
    no_face = revise(rig, {"named": {"5": "pupil-9"}})
    blank = revise(rig, {"named": {"0": "  "}})
    extra = revise(rig, {"add_masks": [], "blur": True})

    assert [r.status_code for r in (outside, nothing, no_face, blank, extra)] == [
        400
    ] * 5
    assert sent_revisions(rig) == []


def test_a_post_not_awaiting_approval_cannot_be_edited():
    rig = a_rig()
    rig.handle(submitted())

    res = revise(rig, {"add_masks": [[1, 1, 5, 5]]})

    assert res.status_code == 409
    assert res.get_json()["error"] == "not_awaiting_approval"


def test_the_page_shows_reasons_warnings_and_the_ocr_outage_loudly():
    rig = a_rig()
    rig.handle(submitted().model_copy(update={"caption": "Well done Ada Lovelace!"}))
    rig.handle(
        redacted().model_copy(
            update={
                "faces": [
                    contracts.FaceReport(
                        index=0, box=(1, 2, 30, 40), masked=True, reason="no_consent"
                    ),
                    contracts.FaceReport(
                        index=1, box=(40, 2, 60, 40), masked=False, pupil_id="pupil-7"
                    ),
                ],
                "texts": [
                    contracts.TextReport(
                        index=0,
                        box=(1, 50, 50, 60),
                        masked=False,
                        reason="readable_text",
                    )
                ],
                "ocr": "unavailable",
            }
        )
    )

    page = rig.client().get("/posts/p1", headers=bearer(APPROVER)).get_data(True)

    assert "masked (no_consent)" in page
    assert (
        'shown: <span class="pupil-label" data-pupil="pupil-7">pupil pupil-7</span>'
        in page
    )
    assert "certificate text visible" in page.lower()
    assert "OCR) is unavailable" in page
    assert "Handwriting is mostly not read" in page
    assert "Ada Lovelace" in page and "may name someone" in page
    assert "Mask the selected region" in page


def test_caption_warnings_flag_two_capitalised_words_not_starting_a_sentence():
    assert domain.caption_warnings("Well done to Ada Lovelace. Sports Day!") == [
        "Ada Lovelace"
    ]
    assert domain.caption_warnings("Great fun at the fair today") == []
    assert domain.caption_warnings("Thanks to Mary Jane Watson") == ["Mary Jane Watson"]


def approve_as(rig, identity):
    return rig.client().post(
        "/api/posts/p1/decision",
        json={"approve": True, "seen": seen(rig)},
        headers=bearer(identity),
    )


def test_whoever_named_a_face_cannot_also_approve_the_post_another_approver_can():
    """Naming a masked face as a pupil may un-mask it on one person's word: a second
    person must look and approve."""
    rig = a_rig()
    awaiting(rig)
    coo = an_identity(("*", "approver"), user_id="u-coo")
    assert revise(rig, {"named": {"0": "pupil-9"}}, identity=coo).status_code == 202
    rig.handle(newer(1, sha256="d" * 64))  # face 0 now shown as pupil-9

    by_namer = approve_as(rig, coo)
    by_another = approve_as(rig, APPROVER)

    assert by_namer.status_code == 403
    assert by_namer.get_json()["error"] == "named_a_face"
    assert by_another.status_code == 200
    assert rig.book.get("p1").decided_by == APPROVER.user_id


def test_adding_a_mask_alone_does_not_stop_the_same_approver_approving():
    rig = a_rig()
    awaiting(rig)
    revise(rig, {"add_masks": [[10, 10, 40, 40]]})
    rig.handle(newer(1))

    assert approve_as(rig, APPROVER).status_code == 200
