from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

from services.consent import adapters, admin, use_cases
from services.consent.domain import (
    BiometricConsent,
    ConsentRecord,
    NeverPublish,
    Pupil,
    TakeDown,
)
from shared import contracts, db
from shared.errors import ConflictError, NotFoundError
from tests.unit.consent.fakes import (
    MONDAY,
    announced,
    engine_of,
    pending,
    relay,
    sql_ports,
)


@pytest.fixture()
def ports(tmp_path):
    ports = sql_ports(tmp_path)
    admin.add_school(ports, "oakfield", "Oakfield Primary")
    admin.add_school(ports, "riverside", "Riverside Academy")
    for pid, fore, sur in (("A1", "Ada", "Lovelace"), ("B2", "Bob", "Brown")):
        use_cases.add_pupil(
            ports.relayed_unit(), Pupil("oakfield", pid, fore, sur, "Y5", "5B")
        )
        use_cases.record_biometric(
            ports.relayed_unit(), "oakfield", BiometricConsent(pid, "granted"), "admin"
        )
    return ports


def encodings_in_db(ports, pupil_id):
    with engine_of(ports).connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                adapters.face_encodings.c.pupil_id == pupil_id
            )
        ).scalar_one()


def vec(seed):
    v = np.random.default_rng(seed).normal(size=128)
    return (v / np.linalg.norm(v)).tolist()


def grant(ports, pupil, platform=None, status="granted", expires=date(2025, 8, 31)):
    return use_cases.record_consent(
        ports.relayed_unit(),
        "oakfield",
        ConsentRecord(
            pupil,
            "social_media",
            platform,
            status,
            0,
            expires_on=expires,
            recorded_by="admin",
        ),
        MONDAY,
    )


def test_the_migrated_schema_matches_the_adapters_tables(ports):
    with engine_of(ports).connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_adding_a_school_is_idempotent(ports):
    again = admin.add_school(ports, "oakfield", "Oakfield Primary")

    assert again is False
    assert [s.slug for s in admin.list_schools(ports)] == ["oakfield", "riverside"]


def test_pupils_are_unique_per_school(ports):
    use_cases.add_pupil(
        ports.relayed_unit(), Pupil("riverside", "A1", "Alan", "Turing")
    )

    with pytest.raises(ConflictError):
        use_cases.add_pupil(
            ports.relayed_unit(), Pupil("oakfield", "A1", "Ada", "Again")
        )
    assert [p.surname for p in ports.views.pupils("riverside")] == ["Turing"]


def test_a_pupil_of_an_unknown_school_is_not_found(ports):
    with pytest.raises(NotFoundError):
        use_cases.add_pupil(
            ports.relayed_unit(), Pupil("nowhere", "A1", "Ada", "Lovelace")
        )


def test_every_change_is_a_new_version_and_history_is_kept(ports):
    grant(ports, "A1")
    grant(ports, "A1", status="withdrawn")
    grant(ports, "A1", platform="x", status="refused")

    history = ports.views.history("oakfield", "A1")
    standing = ports.register.standings("oakfield", ["A1"])["A1"]

    assert [(r.platform, r.status, r.version) for r in history] == [
        (None, "granted", 1),
        (None, "withdrawn", 2),
        ("x", "refused", 1),
    ]
    assert standing.consents[("social_media", None)].status == "withdrawn"


def test_search_finds_pupils_by_name_id_or_class_and_escapes_wildcards(ports):
    assert [p.pupil_id for p in ports.views.pupils("oakfield", "love")] == ["A1"]
    assert [p.pupil_id for p in ports.views.pupils("oakfield", "b2")] == ["B2"]
    assert len(ports.views.pupils("oakfield", "5B")) == 2
    assert ports.views.pupils("oakfield", "%") == []


def test_enrolment_needs_written_biometric_consent(ports):
    use_cases.add_pupil(ports.relayed_unit(), Pupil("oakfield", "C3", "Cy", "Clark"))

    with pytest.raises(ConflictError, match="no written biometric consent"):
        use_cases.enrol(ports.relayed_unit(), "oakfield", "C3", [vec(3)], "admin")
    assert encodings_in_db(ports, "C3") == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda p: use_cases.record_biometric(
            p.relayed_unit(), "oakfield", BiometricConsent("A1", "withdrawn"), "admin"
        ),
        lambda p: use_cases.record_biometric(
            p.relayed_unit(),
            "oakfield",
            BiometricConsent("A1", "granted", pupil_objects=True),
            "admin",
        ),
        lambda p: use_cases.update_pupil(
            p.relayed_unit(),
            Pupil(
                "oakfield",
                "A1",
                "Ada",
                "Lovelace",
                "Y5",
                "5B",
                on_roll=False,
                left_on=MONDAY,
            ),
            MONDAY,
            p.policy,
        ),
    ],
    ids=["withdrawal", "pupil objection", "leaving"],
)
def test_withdrawal_objection_or_leaving_deletes_the_encodings_at_once(ports, change):
    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [vec(1), vec(2)], "admin")
    use_cases.enrol(ports.relayed_unit(), "oakfield", "B2", [vec(5)], "admin")
    assert encodings_in_db(ports, "A1") == 2

    change(ports)

    assert encodings_in_db(ports, "A1") == 0
    assert encodings_in_db(ports, "B2") == 1
    near = ports.gallery.nearest("oakfield", {0: vec(1)})[0]
    assert near.pupil_id != "A1"


def test_the_gallery_finds_the_closest_pupil_and_the_runner_up(ports):
    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [vec(1)], "admin")
    use_cases.enrol(ports.relayed_unit(), "oakfield", "B2", [vec(2)], "admin")

    found = ports.gallery.nearest("oakfield", {0: vec(1), 1: vec(2), 2: vec(9)})

    assert found[0].pupil_id == "A1" and found[0].distance == pytest.approx(0, abs=1e-6)
    assert found[0].second_distance == pytest.approx(
        np.linalg.norm(np.array(vec(1)) - vec(2))
    )
    assert found[1].pupil_id == "B2"
    assert found[2].distance > 0.5


def test_a_gallery_in_another_process_sees_an_enrolment_and_a_deletion(ports):
    other = adapters.SqlFaceGallery(engine_of(ports))
    assert other.nearest("oakfield", {0: vec(1)})[0].pupil_id is None

    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [vec(1)], "admin")
    seen = other.nearest("oakfield", {0: vec(1)})[0].pupil_id
    use_cases.forget_faces(ports.relayed_unit(), "oakfield", "A1")
    after = other.nearest("oakfield", {0: vec(1)})[0].pupil_id

    assert (seen, after) == ("A1", None)


def test_one_schools_pupils_are_never_matched_in_another_school(ports):
    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [vec(1)], "admin")

    assert ports.gallery.nearest("riverside", {0: vec(1)})[0].pupil_id is None
    assert ports.gallery.nearest("nowhere", {0: vec(1)})[0].pupil_id is None


def test_a_malformed_encoding_matches_nobody(ports):
    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [vec(1)], "admin")

    found = ports.gallery.nearest("oakfield", {0: [float("nan")] * 128, 1: [0.1] * 3})

    assert {k: v.pupil_id for k, v in found.items()} == {0: None, 1: None}


def test_every_change_writes_consent_changed_to_the_outbox(ports):
    grant(ports, "A1")
    use_cases.set_never_publish(
        ports.relayed_unit(),
        "oakfield",
        "B2",
        NeverPublish(True, "looked_after"),
        "admin",
        MONDAY,
    )

    events = announced(ports)

    assert [(e.pupil_id, e.cause) for e in events] == [
        ("A1", "recorded"),
        ("B2", "restricted"),
    ]
    assert events[0].scopes[0].state == "granted"
    assert "looked" not in events[1].model_dump_json()


def test_the_relay_publishes_each_pending_change_once(ports):
    grant(ports, "A1")

    sent = relay(ports)
    again = relay(ports)

    assert (sent, again) == (1, 0)
    assert [m.pupil_id for m in ports.publisher.messages()] == ["A1"]


def test_with_the_broker_down_changes_wait_in_the_outbox(ports):
    grant(ports, "A1")
    ports.publisher.up = False

    assert relay(ports) == 0
    assert len(pending(ports)) == 1


def sweep(ports, day):
    return use_cases.sweep_expired(ports.relayed_unit(), day, ports.policy)


def test_the_sweep_announces_each_expiry_once(ports):
    grant(ports, "A1", expires=date(2025, 3, 10))
    grant(ports, "B2", expires=date(2025, 8, 31))
    relay(ports)

    first = sweep(ports, date(2025, 3, 11))
    second = sweep(ports, date(2025, 3, 12))

    [event] = [contracts.parse(e) for e in pending(ports)]
    assert (first, second) == (1, 0)
    assert (event.pupil_id, event.cause, event.effective_on) == (
        "A1",
        "expired",
        date(2025, 3, 11),
    )


def test_a_superseded_expiry_is_not_announced(ports):
    grant(ports, "A1", expires=date(2025, 3, 10))
    grant(ports, "A1", status="refused")

    assert sweep(ports, date(2025, 3, 11)) == 0


def test_a_decision_in_another_process_sees_a_withdrawal_at_once(ports):
    other = adapters.SqlConsents(engine_of(ports))
    grant(ports, "A1")
    before = other.standings("oakfield", ["A1"])["A1"]

    grant(ports, "A1", status="withdrawn")
    use_cases.set_never_publish(
        ports.relayed_unit(),
        "oakfield",
        "B2",
        NeverPublish(True, "adopted"),
        "admin",
        MONDAY,
    )

    after = other.standings("oakfield", ["A1", "B2"])
    assert before.consents[("social_media", None)].status == "granted"
    assert after["A1"].consents[("social_media", None)].status == "withdrawn"
    assert after["B2"].never_publish is True


# Which changes take live posts down (issue 8 section 2).


def sent(ports):
    """The ConsentChanged messages the relay sends now (and since the bus was last
    cleared)."""
    relay(ports)
    return ports.publisher.messages(contracts.ConsentChanged)


def test_a_withdrawal_takes_live_posts_down_and_a_grant_does_not(ports):
    grant(ports, "A1")
    grant(ports, "A1", platform="facebook", status="withdrawn")

    granted, withdrawn = sent(ports)

    assert (granted.take_down, withdrawn.take_down) == (False, True)
    assert [(s.platform, s.state) for s in withdrawn.scopes] == [
        ("facebook", "withdrawn")
    ]


def test_never_publish_always_takes_live_posts_down(ports):
    for active in (True, False):
        use_cases.set_never_publish(
            ports.relayed_unit(),
            "oakfield",
            "B2",
            NeverPublish(active, "adopted"),
            "admin",
            MONDAY,
        )

    flagged, cleared = sent(ports)

    assert (flagged.cause, flagged.take_down) == ("restricted", True)
    assert (cleared.cause, cleared.take_down) == ("unrestricted", False)


def leave(ports, pupil_id):
    left = ports.views.pupil("oakfield", pupil_id)
    use_cases.update_pupil(
        ports.relayed_unit(),
        replace(left, on_roll=False, left_on=MONDAY),
        MONDAY,
        ports.policy,
    )


def test_leaving_and_expiry_keep_live_posts_unless_the_trust_chose_otherwise(ports):
    grant(ports, "A1", expires=date(2025, 3, 10))
    relay(ports)
    ports.publisher.published.clear()
    leave(ports, "B2")
    sweep(ports, date(2025, 3, 11))

    kept = {e.cause: e.take_down for e in sent(ports)}

    strict = replace(ports, policy=TakeDown(on_leaving=True, on_expiry=True))
    grant(strict, "A1", expires=date(2025, 3, 9))
    relay(ports)
    ports.publisher.published.clear()
    sweep(strict, date(2025, 3, 11))
    leave(strict, "A1")
    taken = {e.cause: e.take_down for e in sent(ports)}

    assert kept == {"restricted": False, "expired": False}
    assert taken == {"expired": True, "restricted": True}


def test_an_account_changed_is_kept_through_the_handler_map(ports):
    from services.consent.bootstrap import handler_map
    from services.consent.domain import TargetAccount

    message = contracts.AccountChanged(
        account_id="fb1",
        school_id="oakfield",
        platform="facebook",
        purpose="social_media",
        consent_platform="facebook",
        status="active",
    )

    assert handler_map(ports)[contracts.AccountChanged](message) == []
    assert ports.accounts.scopes("oakfield", ["fb1"]) == {
        "fb1": TargetAccount(
            "fb1", "oakfield", "facebook", "social_media", "facebook", "active"
        ).scope
    }


def test_a_decision_is_sent_after_its_commit_or_waits_for_the_relay(ports):
    from services.consent.bootstrap import handler_map

    event = contracts.FacesDetected(
        photo_id="ph1",
        post_id="po1",
        school_id="oakfield",
        accounts=["nowhere"],
        width=10,
        height=10,
        faces=[contracts.DetectedFace(index=0, box=(0, 0, 5, 5), encoding=vec(1))],
    )
    decide = handler_map(ports)[contracts.FacesDetected]

    assert decide(event) == []
    at_once = ports.publisher.types()
    ports.publisher.up = False
    decide(event.model_copy(update={"photo_id": "ph2"}))
    waiting = [e.type for e in pending(ports)]
    ports.publisher.up = True

    assert at_once == ["faces.decided"]
    assert waiting == ["faces.decided"]
    assert relay(ports) == 1
    assert [m.photo_id for m in ports.publisher.messages()] == ["ph1", "ph2"]
