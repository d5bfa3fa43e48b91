"""Message contracts: every one survives the wire, ids are deterministic, biometric
data is scrubbed, and the JSON Schema files are current."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shared import contracts
from shared.contracts import schemas

SHA = "a" * 64
ENCODING = [0.125] * 128

EXAMPLES: dict[type[contracts.Message], contracts.Message] = {
    contracts.PostSubmitted: contracts.PostSubmitted(
        post_id="p1",
        school_id="oak",
        author_id="u1",
        caption="Sports day",
        accounts=["oak-fb"],
        publish_on=date(2024, 7, 1),
        device_id="d1",
        photos=[
            contracts.PhotoRef(
                photo_id="ph1",
                original_key="originals/p1/a.jpg",
                sha256=SHA,
                bytes=1234,
                filename="a.jpg",
            )
        ],
    ),
    contracts.FacesDetected: contracts.FacesDetected(
        photo_id="ph1",
        post_id="p1",
        school_id="oak",
        platforms=["facebook"],
        publish_on=date(2024, 7, 1),
        width=640,
        height=480,
        faces=[
            contracts.DetectedFace(
                index=0, box=(1, 2, 30, 40), score=0.9, encoding=ENCODING
            ),
            contracts.DetectedFace(index=1, box=(50, 60, 70, 80)),
        ],
    ),
    contracts.PhotoRedacted: contracts.PhotoRedacted(
        photo_id="ph1",
        post_id="p1",
        school_id="oak",
        redacted_key="redacted/p1/ph1.jpg",
        preview_key="previews/p1/ph1.jpg",
        sha256=SHA,
        width=640,
        height=480,
        faces=[
            contracts.FaceReport(
                index=0, box=(1, 2, 30, 40), masked=True, reason="unknown"
            )
        ],
    ),
    contracts.PhotoRefused: contracts.PhotoRefused(
        photo_id="ph1", post_id="p1", school_id="oak", reason="corrupt", detail="eof"
    ),
    contracts.OriginalDeleted: contracts.OriginalDeleted(
        photo_id="ph1",
        post_id="p1",
        school_id="oak",
        original_key="originals/p1/ph1.jpg",
        reason="post_published",
        closed_on=date(2024, 7, 1),
        retention_days=30,
    ),
    contracts.FacesDecided: contracts.FacesDecided(
        photo_id="ph1",
        post_id="p1",
        school_id="oak",
        decisions=[contracts.FaceDecision(index=0, show=False, reason="unknown")],
    ),
    contracts.ConsentChanged: contracts.ConsentChanged(
        school_id="oak",
        pupil_id="A123",
        cause="recorded",
        scopes=[
            contracts.ConsentScope(
                purpose="social_media",
                state="withdrawn",
                expires_on=date(2025, 8, 31),
                version="7:social_media/*:v2",
            )
        ],
        effective_on=date(2025, 3, 3),
    ),
    contracts.RecordDecision: contracts.RecordDecision(
        post_id="p1",
        approver_id="u2",
        approve=True,
        seen={"ph1": contracts.SeenPhoto(revision=1, sha256="b" * 64)},
    ),
    contracts.SignInFailed: contracts.SignInFailed(
        username="teacher.oakfield", address="10.0.0.7", reason="wrong", via="page"
    ),
    contracts.DecisionRefused: contracts.DecisionRefused(
        post_id="p1",
        school_id="oak",
        approver_id="u2",
        approve=True,
        code="photo_changed",
        reason="a photo changed since you looked at it",
    ),
    contracts.ReviseRedaction: contracts.ReviseRedaction(
        photo_id="ph1",
        post_id="p1",
        school_id="oak",
        revision=1,
        add_masks=[(10, 10, 40, 40)],
        named={0: "pupil-7"},
        requested_by="u2",
    ),
    contracts.PostApproved: contracts.PostApproved(
        post_id="p1",
        school_id="oak",
        author_id="u1",
        approved_by="u2",
        accounts=["oak-fb"],
        images=[
            contracts.ApprovedImage(
                photo_id="ph1", redacted_key="redacted/p1/ph1.jpg", sha256=SHA
            )
        ],
    ),
    contracts.PostRejected: contracts.PostRejected(
        post_id="p1", school_id="oak", reason="blurry", rejected_by="u2"
    ),
    contracts.PostRecalled: contracts.PostRecalled(
        post_id="p1", school_id="oak", round=1, reason="consent_changed", pupils=["P1"]
    ),
    contracts.VerifyPostConsent: contracts.VerifyPostConsent(
        post_id="p1",
        school_id="oak",
        round=1,
        accounts=["oak-fb"],
        shown=[
            contracts.ShownPupil(
                photo_id="ph1", pupil_id="P1", consent_versions=["7:social_media/*:v1"]
            )
        ],
    ),
    contracts.PostConsentVerified: contracts.PostConsentVerified(
        post_id="p1",
        school_id="oak",
        round=1,
        current=False,
        stale=[contracts.StalePupil(pupil_id="P1", reason="withdrawn")],
        checked_on=date(2025, 3, 3),
    ),
    contracts.AccountChanged: contracts.AccountChanged(
        account_id="oak-fb",
        school_id="oak",
        platform="facebook",
        purpose="social_media",
        consent_platform="facebook",
        status="active",
    ),
    contracts.CheckFit: contracts.CheckFit(
        post_id="p1",
        school_id="oak",
        caption="Sports day",
        accounts=["oak-x"],
        images=[contracts.FitImage(photo_id="ph1", redacted_key="redacted/p1/ph1.jpg")],
    ),
    contracts.PostFitChecked: contracts.PostFitChecked(
        post_id="p1",
        school_id="oak",
        accounts=[
            contracts.AccountFit(
                account_id="oak-x",
                platform="x",
                fits=False,
                problems=[
                    "The caption is 312 characters with the footer; X allows 280."
                ],
            )
        ],
    ),
    contracts.DeliveryUpdated: contracts.DeliveryUpdated(
        post_id="p1",
        school_id="oak",
        account_id="oak-fb",
        platform="facebook",
        state="waiting",
        reason="rate_limited",
        attempts=1,
        retry_at=datetime(2025, 3, 3, 10, 0, tzinfo=UTC),
        at=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
    ),
    contracts.TakedownRequested: contracts.TakedownRequested(
        takedown_id="t1",
        post_id="p1",
        school_id="oak",
        accounts=["oak-fb"],
        reason="withdrawn",
        pupil_id="P1",
    ),
    contracts.ManualTakedownOpened: contracts.ManualTakedownOpened(
        post_id="p1",
        school_id="oak",
        account_id="oak-ig",
        platform="instagram",
        owner="approver.oak",
        url="https://instagram.example/p/1",
        reason="auth",
    ),
    contracts.ManualTakedownEscalated: contracts.ManualTakedownEscalated(
        post_id="p1",
        school_id="oak",
        account_id="oak-ig",
        opened_at=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        hours_open=25.0,
    ),
    contracts.ManualTakedownClosed: contracts.ManualTakedownClosed(
        post_id="p1",
        school_id="oak",
        account_id="oak-ig",
        closed_by="approver.oak",
        confirmation="removed by hand",
    ),
    contracts.TakedownCompleted: contracts.TakedownCompleted(
        takedown_id="t1",
        school_id="oak",
        pupil_id="P1",
        reason="withdrawn",
        posts=["p1"],
        copies=4,
        requested_at=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        completed_at=datetime(2025, 3, 3, 9, 0, 12, tzinfo=UTC),
        seconds=12.0,
    ),
    contracts.SiteChanged: contracts.SiteChanged(
        platform="x", approved=False, by="trust-it", note="paid API withdrawn"
    ),
    contracts.PublicationHeld: contracts.PublicationHeld(
        post_id="p1", school_id="oak", round=1, reason="consent_changed", pupils=["P1"]
    ),
    contracts.PostPublished: contracts.PostPublished(
        post_id="p1",
        school_id="oak",
        account="oak-fb",
        target="folder",
        location="/srv/out/p1",
    ),
    contracts.PublishFailed: contracts.PublishFailed(
        post_id="p1", school_id="oak", account="oak-fb", reason="rejected_by_network"
    ),
    contracts.DeviceRegistered: contracts.DeviceRegistered(
        device_id="d1", school_id="oak", owner="sam", kind="personal", name="Phone"
    ),
    contracts.DeviceApproved: contracts.DeviceApproved(
        device_id="d1", school_id="oak", owner="sam", kind="personal", approved_by="u3"
    ),
    contracts.DeviceRevoked: contracts.DeviceRevoked(
        device_id="d1", school_id="oak", owner="sam", revoked_by="u3", reason="lost"
    ),
    contracts.DeviceEnrolled: contracts.DeviceEnrolled(
        device_id="d1", school_id="oak", owner="sam", via="browser"
    ),
    contracts.UploadRefused: contracts.UploadRefused(
        reason="device_revoked",
        user_id="u1",
        username="sam",
        school_id="oak",
        device_id="d1",
    ),
    contracts.ReceiptIssued: contracts.ReceiptIssued(
        receipt_id="r1",
        post_id="p1",
        photo_id="ph1",
        school_id="oak",
        author_id="u1",
        sha256=SHA,
        bytes=1234,
        stored_at="originals/p1/a.jpg",
        device_id="d1",
        deletion_due_at=datetime(2024, 7, 1, 9, 15, tzinfo=UTC),
    ),
    contracts.DeletionConfirmed: contracts.DeletionConfirmed(
        receipt_id="r1",
        post_id="p1",
        school_id="oak",
        device_id="d1",
        deleted_at=datetime(2024, 7, 1, 9, 5, tzinfo=UTC),
        method="uploader-unlink",
        confirmed_by="u1",
    ),
    contracts.DeletionOverdue: contracts.DeletionOverdue(
        receipt_id="r1",
        post_id="p1",
        school_id="oak",
        device_id="d1",
        owner="sam",
        due_at=datetime(2024, 7, 1, 9, 15, tzinfo=UTC),
    ),
}


def a_cause(**changes: object) -> contracts.Envelope:
    return contracts.seal(
        EXAMPLES[contracts.PostSubmitted], producer="intake"
    ).model_copy(update=changes)


def test_every_contract_has_an_example() -> None:
    assert set(EXAMPLES) == set(contracts.ALL)


@pytest.mark.parametrize("cls", contracts.ALL, ids=lambda c: c.TYPE)
def test_every_contract_survives_seal_json_envelope_parse(
    cls: type[contracts.Message],
) -> None:
    message = EXAMPLES[cls]

    wire = contracts.seal(message, producer="test", actor="u9").model_dump_json()
    envelope = contracts.Envelope.model_validate_json(wire)
    parsed = contracts.parse(envelope)

    assert parsed == message
    assert type(parsed) is cls
    assert (envelope.type, envelope.version) == (cls.TYPE, cls.VERSION)
    assert envelope.routing_key == cls.routing_key() == f"{cls.TYPE}.v{cls.VERSION}"
    assert envelope.actor == "u9"


def test_an_unknown_type_is_refused_by_name() -> None:
    envelope = a_cause(type="post.exploded")

    with pytest.raises(contracts.UnknownMessageError, match="post.exploded v1"):
        contracts.parse(envelope)


def test_consumers_ignore_fields_they_do_not_know() -> None:
    envelope = contracts.seal(EXAMPLES[contracts.PhotoRefused], producer="redaction")
    newer = envelope.model_copy(update={"data": {**envelope.data, "retry_after": 5}})

    assert contracts.parse(newer) == EXAMPLES[contracts.PhotoRefused]


def test_messages_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        EXAMPLES[contracts.PhotoRefused].reason = "fine"  # type: ignore[attr-defined]


def test_a_redelivered_cause_yields_the_same_outgoing_ids() -> None:
    cause = a_cause()
    message = EXAMPLES[contracts.PhotoRefused]

    first = contracts.seal(message, producer="redaction", cause=cause)
    again = contracts.seal(message, producer="redaction", cause=cause)

    assert first.id == again.id
    assert uuid.UUID(first.id).version == 5
    assert first.correlation_id == cause.correlation_id
    assert first.causation_id == cause.id


def test_outgoing_ids_differ_by_cause_index_and_type() -> None:
    cause = a_cause()
    refused = EXAMPLES[contracts.PhotoRefused]
    rejected = EXAMPLES[contracts.PostRejected]

    ids = {
        contracts.seal(refused, producer="r", cause=cause).id,
        contracts.seal(refused, producer="r", cause=cause, index=1).id,
        contracts.seal(rejected, producer="r", cause=cause).id,
        contracts.seal(refused, producer="r", cause=a_cause(id=str(uuid.uuid4()))).id,
    }

    assert len(ids) == 4


def test_a_message_without_a_cause_starts_its_own_correlation() -> None:
    envelope = contracts.seal(EXAMPLES[contracts.RecordDecision], producer="approval")

    assert envelope.correlation_id == envelope.id
    assert envelope.causation_id is None
    assert envelope.occurred_at.tzinfo is not None


def test_the_actor_follows_the_cause_unless_given() -> None:
    cause = a_cause(actor="teacher-1")

    followed = contracts.seal(
        EXAMPLES[contracts.PostRejected], producer="a", cause=cause
    )
    given = contracts.seal(
        EXAMPLES[contracts.PostRejected], producer="a", cause=cause, actor="approver-2"
    )

    assert (followed.actor, given.actor) == ("teacher-1", "approver-2")


def test_a_pinned_time_and_id_are_kept() -> None:
    at = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)

    envelope = contracts.seal(
        EXAMPLES[contracts.PostPublished],
        producer="publishing",
        message_id="m-1",
        occurred_at=at,
    )

    assert (envelope.id, envelope.occurred_at) == ("m-1", at)


def test_deterministic_ids_come_from_natural_keys() -> None:
    assert contracts.deterministic_id("post", "p1") == contracts.deterministic_id(
        "post", "p1"
    )
    assert contracts.deterministic_id("post", "p1") != contracts.deterministic_id(
        "post", "p2"
    )


def test_scrub_drops_face_encodings_and_keeps_the_rest() -> None:
    envelope = contracts.seal(EXAMPLES[contracts.FacesDetected], producer="redaction")

    kept = contracts.scrub(envelope)

    assert "encoding" not in json.dumps(kept)
    assert str(ENCODING[0]) not in json.dumps(kept)
    assert kept["faces"][0] == {"index": 0, "box": [1, 2, 30, 40], "score": 0.9}
    assert kept["photo_id"] == "ph1"


def test_scrub_drops_encodings_from_unknown_types_too() -> None:
    envelope = a_cause(
        type="faces.detected",
        version=2,
        data={"faces": [{"index": 0, "encoding": ENCODING, "encodings": [ENCODING]}]},
    )

    assert contracts.scrub(envelope) == {"faces": [{"index": 0}]}


def test_scrub_leaves_messages_without_biometrics_alone() -> None:
    envelope = contracts.seal(EXAMPLES[contracts.PostSubmitted], producer="intake")

    assert contracts.scrub(envelope) == envelope.data


def test_the_committed_json_schemas_are_current() -> None:
    assert schemas.stale() == []


def test_the_schema_export_writes_one_file_per_contract(tmp_path: Path) -> None:
    assert schemas.main([], directory=tmp_path) == 0

    names = {p.name for p in tmp_path.glob("*.json")}
    assert names == {"envelope.json"} | {
        f"{c.TYPE}.v{c.VERSION}.json" for c in contracts.ALL
    }
    faces = json.loads((tmp_path / "faces.detected.v1.json").read_text())
    assert (faces["x-type"], faces["x-version"], faces["x-kind"]) == (
        "faces.detected",
        1,
        "event",
    )
    assert schemas.main(["--check"], directory=tmp_path) == 0


def test_the_drift_check_finds_changed_missing_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas.write(tmp_path)
    (tmp_path / "post.approved.v1.json").write_text("{}\n")
    (tmp_path / "post.rejected.v1.json").unlink()
    (tmp_path / "post.retracted.v1.json").write_text("{}\n")

    code = schemas.main(["--check"], directory=tmp_path)

    assert code == 1
    assert schemas.stale(tmp_path) == [
        "post.approved.v1.json",
        "post.rejected.v1.json",
        "post.retracted.v1.json",
    ]
    assert "post.retracted.v1.json" in capsys.readouterr().out


def test_writing_again_removes_files_no_contract_produces(tmp_path: Path) -> None:
    (tmp_path / "post.retracted.v1.json").write_text("{}\n")

    schemas.write(tmp_path)

    assert schemas.stale(tmp_path) == []
