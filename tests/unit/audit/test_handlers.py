import json

from services.audit import admin
from services.audit.bootstrap import QUEUE_KEYS, Ports, envelope_handler, handler_map
from shared import contracts
from tests.unit.audit.builders import (
    a_clock,
    faces_decided,
    faces_detected,
    post_submitted,
    unknown_type,
)
from tests.unit.audit.fakes import FakeAuditUnit, InMemoryAuditTrail, fake_ports


def record(*envelopes, trail=None):
    """Each envelope through audit's use case in its unit: committed, nothing sent."""
    trail = trail or InMemoryAuditTrail()
    units: list[FakeAuditUnit] = []

    def unit():
        units.append(FakeAuditUnit(trail))
        return units[-1]

    handle = envelope_handler(Ports(log=trail, unit=unit, clock=a_clock()))
    for envelope in envelopes:
        assert handle(envelope) == []
    assert [u.commits for u in units] == [1] * len(envelopes)
    return trail


def test_every_message_is_recorded_with_its_envelope():
    submitted = post_submitted(actor="teacher-1")

    [kept] = record(submitted).records

    assert (kept.message_id, kept.type, kept.version, kept.producer) == (
        submitted.id,
        "post.submitted",
        1,
        "intake",
    )
    assert (kept.correlation_id, kept.actor, kept.post_id, kept.school_id) == (
        submitted.correlation_id,
        "teacher-1",
        "post-1",
        "oakfield",
    )
    assert kept.occurred_at == submitted.occurred_at


def test_a_redelivered_message_is_recorded_once():
    detected = faces_detected()

    trail = record(detected, detected, detected)

    assert len(trail.records) == 1


def test_face_encodings_are_never_kept():
    trail = record(faces_detected())

    stored = json.dumps(trail.records[0].data)
    assert "encoding" not in stored
    assert "0.25" not in stored
    assert trail.records[0].data["faces"][0]["box"] == [0, 0, 5, 5]


def test_pupils_decided_on_are_indexed():
    [kept] = record(faces_decided(pupils=("ada", "bo"))).records

    assert kept.pupil_ids == ("ada", "bo")
    assert kept.photo_id == "photo-1"


def test_a_type_without_a_contract_is_still_recorded():
    [kept] = record(unknown_type(encodings=[[0.5]])).records

    assert (kept.type, kept.version, kept.device_id) == (
        "device.registered",
        3,
        "ipad-7",
    )
    assert "encodings" not in kept.data


def test_the_chain_of_recorded_messages_verifies():
    ports = fake_ports()
    handle = envelope_handler(ports)
    for envelope in (
        post_submitted(),
        faces_detected(),
        faces_decided(),
        unknown_type(),
    ):
        handle(envelope)

    result = admin.verify_chain(ports)

    assert (result.ok, result.checked) == (True, 4)


def test_the_worker_binds_every_routing_key_and_sends_everything_to_the_journal():
    assert QUEUE_KEYS == ("#",)
    assert dict(handler_map(fake_ports())) == {}


def test_audit_handles_every_contract_type():
    ports = fake_ports()
    handle = envelope_handler(ports)
    for i, cls in enumerate(contracts.ALL):
        handle(
            contracts.Envelope(
                id=f"m-{i}",
                type=cls.TYPE,
                version=cls.VERSION,
                producer="x",
                occurred_at=contracts.now(),
                correlation_id="c",
                data={},
            )
        )

    assert {r.type for r in ports.log.chain()} == {cls.TYPE for cls in contracts.ALL}
