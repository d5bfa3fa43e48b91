"""Where is this pupil shown? (issue 8 section 3): every post whose newest rendering
shows the pupil unmasked, with its state per account; for a school's admins and IT."""

from __future__ import annotations

from datetime import UTC, datetime

from shared import contracts
from tests.unit.approval.builders import a_rig, an_identity, bearer, redacted, submitted

ADMIN = an_identity(("north", "admin"), user_id="u-admin")
IT = an_identity(("north", "it_auditor"), user_id="u-it")
TEACHER = an_identity(("north", "teacher"), user_id="u-teacher2")
OTHER_ADMIN = an_identity(("south", "admin"), user_id="u-south")


def showing(pupil, photo_id, post_id):
    event = redacted(photo_id, post_id, masked=False)
    face = event.faces[0].model_copy(update={"pupil_id": pupil})
    return event.model_copy(update={"faces": [face]})


def a_school():
    rig = a_rig()
    rig.handle(submitted("p1", photos=("a1",)))
    rig.handle(showing("P1", "a1", "p1"))
    rig.handle(submitted("p2", photos=("b1",)))
    rig.handle(redacted("b1", "p2", masked=True))  # P1 masked here: not shown
    rig.handle(
        contracts.DeliveryUpdated(
            post_id="p1",
            school_id="north",
            account_id="newsroom",
            platform="facebook",
            state="taken_down",
            url="https://facebook.example/1",
            at=datetime(2030, 1, 2, tzinfo=UTC),
        )
    )
    return rig


def test_the_posts_showing_a_pupil_with_their_state_on_each_account():
    rig = a_school()

    got = rig.client().get("/api/schools/north/pupils/P1/posts", headers=bearer(ADMIN))

    assert got.status_code == 200
    [post] = got.get_json()["posts"]
    assert post["post_id"] == "p1"
    assert post["accounts"] == [
        {
            "account": "newsroom",
            "state": "taken_down",
            "at": "2030-01-02T00:00:00+00:00",
            "url": "https://facebook.example/1",
        }
    ]


def test_the_dpo_export_has_a_row_per_post_and_account():
    rig = a_school()

    got = rig.client().get("/api/schools/north/pupils/P1/posts.csv", headers=bearer(IT))

    assert got.status_code == 200 and got.mimetype == "text/csv"
    lines = got.data.decode().splitlines()
    assert lines[0].startswith("pupil_id,post_id,post_status,account,state")
    assert lines[1].startswith("P1,p1,awaiting_approval,newsroom,taken_down")
    assert len(lines) == 2


def test_only_the_schools_admins_and_it_may_ask():
    rig = a_school()
    client = rig.client()

    teacher = client.get("/api/schools/north/pupils/P1/posts", headers=bearer(TEACHER))
    other = client.get(
        "/api/schools/north/pupils/P1/posts", headers=bearer(OTHER_ADMIN)
    )

    assert (teacher.status_code, other.status_code) == (403, 403)
