from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa

from services.consent import adapters, admin, outbox
from services.consent.adapters import NeverPublish
from services.consent.domain import BiometricConsent, ConsentRecord, Pupil
from shared import contracts, db
from shared.errors import ConflictError, NotFoundError
from tests.support.bus import FailingBus
from tests.unit.consent.fakes import MONDAY, sql_ports


@pytest.fixture()
def ports(tmp_path):
    ports = sql_ports(tmp_path)
    admin.add_school(ports, "oakfield", "Oakfield Primary")
    admin.add_school(ports, "riverside", "Riverside Academy")
    for pid, fore, sur in (("A1", "Ada", "Lovelace"), ("B2", "Bob", "Brown")):
        ports.store.add_pupil(Pupil("oakfield", pid, fore, sur, "Y5", "5B"))
        ports.store.record_biometric(
            "oakfield", BiometricConsent(pid, "granted"), "admin"
        )
    return ports


def encodings_in_db(ports, pupil_id):
    with ports.store.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                adapters.face_encodings.c.pupil_id == pupil_id
            )
        ).scalar_one()


def vec(seed):
    v = np.random.default_rng(seed).normal(size=128)
    return (v / np.linalg.norm(v)).tolist()


def grant(ports, pupil, platform=None, status="granted", expires=date(2025, 8, 31)):
    return ports.store.record_consent(
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
    with ports.store.engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_adding_a_school_is_idempotent(ports):
    again = admin.add_school(ports, "oakfield", "Oakfield Primary")

    assert again is False
    assert [s.slug for s in admin.list_schools(ports)] == ["oakfield", "riverside"]


def test_pupils_are_unique_per_school(ports):
    ports.store.add_pupil(Pupil("riverside", "A1", "Alan", "Turing"))

    with pytest.raises(ConflictError):
        ports.store.add_pupil(Pupil("oakfield", "A1", "Ada", "Again"))
    assert [p.surname for p in ports.store.pupils("riverside")] == ["Turing"]


def test_a_pupil_of_an_unknown_school_is_not_found(ports):
    with pytest.raises(NotFoundError):
        ports.store.add_pupil(Pupil("nowhere", "A1", "Ada", "Lovelace"))


def test_every_change_is_a_new_version_and_history_is_kept(ports):
    grant(ports, "A1")
    grant(ports, "A1", status="withdrawn")
    grant(ports, "A1", platform="x", status="refused")

    history = ports.store.history("oakfield", "A1")
    standing = ports.store.standings("oakfield", ["A1"])["A1"]

    assert [(r.platform, r.status, r.version) for r in history] == [
        (None, "granted", 1),
        (None, "withdrawn", 2),
        ("x", "refused", 1),
    ]
    assert standing.consents[("social_media", None)].status == "withdrawn"


def test_search_finds_pupils_by_name_id_or_class_and_escapes_wildcards(ports):
    assert [p.pupil_id for p in ports.store.pupils("oakfield", "love")] == ["A1"]
    assert [p.pupil_id for p in ports.store.pupils("oakfield", "b2")] == ["B2"]
    assert len(ports.store.pupils("oakfield", "5B")) == 2
    assert ports.store.pupils("oakfield", "%") == []


def test_enrolment_needs_written_biometric_consent(ports):
    ports.store.add_pupil(Pupil("oakfield", "C3", "Cy", "Clark"))

    with pytest.raises(ConflictError, match="no written biometric consent"):
        ports.store.enrol("oakfield", "C3", [vec(3)], "admin")
    assert encodings_in_db(ports, "C3") == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.store.record_biometric(
            "oakfield", BiometricConsent("A1", "withdrawn"), "admin"
        ),
        lambda p: p.store.record_biometric(
            "oakfield", BiometricConsent("A1", "granted", pupil_objects=True), "admin"
        ),
        lambda p: p.store.update_pupil(
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
            "admin",
            MONDAY,
        ),
    ],
    ids=["withdrawal", "pupil objection", "leaving"],
)
def test_withdrawal_objection_or_leaving_deletes_the_encodings_at_once(ports, change):
    ports.store.enrol("oakfield", "A1", [vec(1), vec(2)], "admin")
    ports.store.enrol("oakfield", "B2", [vec(5)], "admin")
    assert encodings_in_db(ports, "A1") == 2

    change(ports)

    assert encodings_in_db(ports, "A1") == 0
    assert encodings_in_db(ports, "B2") == 1
    near = ports.gallery.nearest("oakfield", {0: vec(1)})[0]
    assert near.pupil_id != "A1"


def test_the_gallery_finds_the_closest_pupil_and_the_runner_up(ports):
    ports.store.enrol("oakfield", "A1", [vec(1)], "admin")
    ports.store.enrol("oakfield", "B2", [vec(2)], "admin")

    found = ports.gallery.nearest("oakfield", {0: vec(1), 1: vec(2), 2: vec(9)})

    assert found[0].pupil_id == "A1" and found[0].distance == pytest.approx(0, abs=1e-6)
    assert found[0].second_distance == pytest.approx(
        np.linalg.norm(np.array(vec(1)) - vec(2))
    )
    assert found[1].pupil_id == "B2"
    assert found[2].distance > 0.5


def test_a_gallery_in_another_process_sees_an_enrolment_and_a_deletion(ports):
    other = adapters.SqlFaceGallery(ports.store.engine)
    assert other.nearest("oakfield", {0: vec(1)})[0].pupil_id is None

    ports.store.enrol("oakfield", "A1", [vec(1)], "admin")
    seen = other.nearest("oakfield", {0: vec(1)})[0].pupil_id
    ports.store.forget_faces("oakfield", "A1")
    after = other.nearest("oakfield", {0: vec(1)})[0].pupil_id

    assert (seen, after) == ("A1", None)


def test_one_schools_pupils_are_never_matched_in_another_school(ports):
    ports.store.enrol("oakfield", "A1", [vec(1)], "admin")

    assert ports.gallery.nearest("riverside", {0: vec(1)})[0].pupil_id is None
    assert ports.gallery.nearest("nowhere", {0: vec(1)})[0].pupil_id is None


def test_a_malformed_encoding_matches_nobody(ports):
    ports.store.enrol("oakfield", "A1", [vec(1)], "admin")

    found = ports.gallery.nearest("oakfield", {0: [float("nan")] * 128, 1: [0.1] * 3})

    assert {k: v.pupil_id for k, v in found.items()} == {0: None, 1: None}


def test_every_change_writes_consent_changed_to_the_outbox(ports):
    grant(ports, "A1")
    ports.store.set_never_publish(
        "oakfield", "B2", NeverPublish(True, "looked_after"), "admin", MONDAY
    )

    events = [contracts.parse(e) for e in ports.store.pending()]

    assert [(e.pupil_id, e.cause) for e in events] == [
        ("A1", "recorded"),
        ("B2", "restricted"),
    ]
    assert events[0].scopes[0].state == "granted"
    assert "looked" not in events[1].model_dump_json()


def test_the_relay_publishes_each_pending_change_once(ports):
    grant(ports, "A1")

    sent = outbox.relay_outbox(ports)
    again = outbox.relay_outbox(ports)

    assert (sent, again) == (1, 0)
    assert [m.pupil_id for m in ports.publisher.messages()] == ["A1"]


def test_with_the_broker_down_changes_wait_in_the_outbox(ports):
    grant(ports, "A1")
    down = type(ports)(**{**vars(ports), "publisher": FailingBus()})

    assert outbox.relay_outbox(down) == 0
    assert len(ports.store.pending()) == 1


def test_the_sweep_announces_each_expiry_once(ports):
    grant(ports, "A1", expires=date(2025, 3, 10))
    grant(ports, "B2", expires=date(2025, 8, 31))
    outbox.relay_outbox(ports)

    first = ports.store.sweep_expired(date(2025, 3, 11))
    second = ports.store.sweep_expired(date(2025, 3, 12))

    [event] = [contracts.parse(e) for e in ports.store.pending()]
    assert (first, second) == (1, 0)
    assert (event.pupil_id, event.cause, event.effective_on) == (
        "A1",
        "expired",
        date(2025, 3, 11),
    )


def test_a_superseded_expiry_is_not_announced(ports):
    grant(ports, "A1", expires=date(2025, 3, 10))
    grant(ports, "A1", status="refused")

    assert ports.store.sweep_expired(date(2025, 3, 11)) == 0


def test_a_decision_in_another_process_sees_a_withdrawal_at_once(ports):
    other = adapters.SqlConsentStore(ports.store.engine)
    grant(ports, "A1")
    before = other.standings("oakfield", ["A1"])["A1"]

    grant(ports, "A1", status="withdrawn")
    ports.store.set_never_publish(
        "oakfield", "B2", NeverPublish(True, "adopted"), "admin", MONDAY
    )

    after = other.standings("oakfield", ["A1", "B2"])
    assert before.consents[("social_media", None)].status == "granted"
    assert after["A1"].consents[("social_media", None)].status == "withdrawn"
    assert after["B2"].never_publish is True


# Which changes take live posts down (issue 8 section 2).


def announced(ports):
    return [contracts.parse(e) for e in ports.store.pending()]


def test_a_withdrawal_takes_live_posts_down_and_a_grant_does_not(ports):
    grant(ports, "A1")
    grant(ports, "A1", platform="facebook", status="withdrawn")

    granted, withdrawn = announced(ports)

    assert (granted.take_down, withdrawn.take_down) == (False, True)
    assert [(s.platform, s.state) for s in withdrawn.scopes] == [
        ("facebook", "withdrawn")
    ]


def test_never_publish_always_takes_live_posts_down(ports):
    ports.store.set_never_publish(
        "oakfield", "B2", NeverPublish(True, "adopted"), "admin", MONDAY
    )
    ports.store.set_never_publish(
        "oakfield", "B2", NeverPublish(False, "adopted"), "admin", MONDAY
    )

    flagged, cleared = announced(ports)

    assert (flagged.cause, flagged.take_down) == ("restricted", True)
    assert (cleared.cause, cleared.take_down) == ("unrestricted", False)


def test_leaving_and_expiry_keep_live_posts_unless_the_trust_chose_otherwise(
    tmp_path, ports
):
    grant(ports, "A1", expires=date(2025, 3, 10))
    outbox.relay_outbox(ports)
    left = ports.store.pupil("oakfield", "B2")
    ports.store.update_pupil(
        replace(left, on_roll=False, left_on=MONDAY), "admin", MONDAY
    )
    ports.store.sweep_expired(date(2025, 3, 11))

    kept = {e.cause: e.take_down for e in announced(ports)}

    strict = adapters.SqlConsentStore(
        ports.store.engine, take_down_on_leaving=True, take_down_on_expiry=True
    )
    strict_ports = type(ports)(**{**vars(ports), "store": strict})
    grant(strict_ports, "A1", expires=date(2025, 3, 9))
    outbox.relay_outbox(ports)
    strict.sweep_expired(date(2025, 3, 11))
    again = strict.pupil("oakfield", "A1")
    strict.update_pupil(replace(again, on_roll=False, left_on=MONDAY), "admin", MONDAY)
    taken = {e.cause: e.take_down for e in announced(ports)}

    assert kept == {"restricted": False, "expired": False}
    assert taken == {"expired": True, "restricted": True}
