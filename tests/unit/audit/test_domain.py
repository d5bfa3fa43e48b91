from dataclasses import replace

from services.audit import domain
from tests.unit.audit.builders import T0


def an_entry(n: int, **overrides):
    values = dict(
        message_id=f"m-{n}",
        type="post.submitted",
        version=1,
        producer="intake",
        occurred_at=T0,
        recorded_at=T0,
        correlation_id="c",
        causation_id=None,
        actor="teacher-1",
        school_id="oakfield",
        post_id="post-1",
        photo_id=None,
        pupil_ids=(),
        device_id=None,
        data={"post_id": "post-1", "n": n},
    )
    values.update(overrides)
    return domain.Entry(**values)


def a_chain(length: int) -> list[domain.Record]:
    records, prev = [], domain.GENESIS
    for n in range(1, length + 1):
        records.append(domain.chain(an_entry(n), n, prev))
        prev = records[-1].hash
    return records


def test_an_intact_chain_verifies():
    result = domain.verify(a_chain(5))

    assert (result.ok, result.checked, result.head_seq) == (True, 5, 5)
    assert result.head_hash == a_chain(5)[-1].hash


def test_an_empty_chain_verifies():
    assert domain.verify([]).ok


def test_altered_data_is_detected_at_that_record():
    records = a_chain(5)
    records[2] = replace(records[2], data={"post_id": "post-1", "n": 99})

    result = domain.verify(records)

    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "altered" in result.reason


def test_an_altered_field_with_a_recomputed_hash_breaks_the_next_link():
    records = a_chain(5)
    forged = replace(records[1], actor="someone-else")
    records[1] = replace(forged, hash=domain.record_hash(forged))

    result = domain.verify(records)

    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_a_removed_record_is_detected():
    records = a_chain(5)
    del records[2]

    result = domain.verify(records)

    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "missing" in result.reason


def test_a_forged_record_inserted_in_the_middle_is_detected():
    records = a_chain(5)
    forged = domain.chain(an_entry(99), 3, records[1].hash)
    renumbered = [replace(r, seq=r.seq + 1) for r in records[2:]]
    records = [*records[:2], forged, *renumbered]

    result = domain.verify(records)

    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_pupils_are_taken_from_faces_and_decisions():
    data = {
        "faces": [{"pupil_id": "bo"}, {"pupil_id": None}, {"index": 2}],
        "decisions": [{"pupil_id": "ada"}, {"pupil_id": "bo"}],
    }

    assert domain.pupil_ids(data) == ("ada", "bo")


def test_a_consent_change_an_approval_and_a_takedown_are_found_by_pupil():
    """Issue 8: the trail answers "every step for pupil X" (ids, never names)."""
    changed = {"pupil_id": "P1", "scopes": [{"purpose": "social_media"}]}
    approved = {"images": [{"shown": [{"pupil_id": "P2"}, {"pupil_id": "P1"}]}]}
    verified = {"stale": [{"pupil_id": "P3", "reason": "withdrawn"}]}
    held = {"pupils": ["P4", 5]}

    assert domain.pupil_ids(changed) == ("P1",)
    assert domain.pupil_ids(approved) == ("P1", "P2")
    assert domain.pupil_ids(verified) == ("P3",)
    assert domain.pupil_ids(held) == ("P4",)


def test_the_entry_lifts_ids_out_of_the_data_and_drops_encodings():
    entry = domain.entry_for(
        message_id="m",
        type="x.y",
        version=1,
        producer="p",
        occurred_at=T0,
        recorded_at=T0,
        correlation_id="c",
        causation_id=None,
        actor=None,
        data={
            "school_id": "oakfield",
            "post_id": "p1",
            "author_id": "t1",
            "device_id": "ipad",
            "photos": [{"photo_id": "ph1"}],
            "faces": [{"encoding": [0.1], "pupil_id": "ada"}],
            "encodings": [[1.0]],
        },
    )

    assert (
        entry.school_id,
        entry.post_id,
        entry.photo_id,
        entry.actor,
        entry.device_id,
        entry.pupil_ids,
    ) == ("oakfield", "p1", "ph1", "t1", "ipad", ("ada",))
    assert "encoding" not in str(entry.data)


def test_the_envelope_actor_wins_over_ids_in_the_data():
    entry = domain.entry_for(
        message_id="m",
        type="x.y",
        version=1,
        producer="p",
        occurred_at=T0,
        recorded_at=T0,
        correlation_id="c",
        causation_id=None,
        actor="approver-9",
        data={"author_id": "t1"},
    )

    assert entry.actor == "approver-9"
