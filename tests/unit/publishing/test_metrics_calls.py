"""What publishing counts for the dashboard: each call to a platform to create a post,
by its answer, and each copy's time from the consent change to gone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from prometheus_client import REGISTRY

from services.publishing import bootstrap, delivery, domain, takedown
from services.publishing.platforms.base import (
    Credentials,
    PermanentError,
    TransientError,
)
from shared import contracts
from tests.unit.publishing.builders import a_rig, an_account, approved
from tests.unit.publishing.fakes import InMemoryTakedowns, RecordingAdapter

CHANGED_AT = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)  # the rig's clock starts here


class Tokens:
    def get(self, account_id):
        return Credentials("token")

    def put(self, account_id, credentials, *, by=None):
        pass

    def claim_refresh(self, *a):
        return True

    def release_refresh(self, account_id):
        pass


def attempts(platform: str, outcome: str) -> float:
    labels = {"platform": platform, "outcome": outcome}
    return REGISTRY.get_sample_value("safepost_publish_attempts_total", labels) or 0.0


def takedowns(platform: str) -> tuple[float, float]:
    labels = {"platform": platform}
    count = REGISTRY.get_sample_value("safepost_takedown_seconds_count", labels)
    total = REGISTRY.get_sample_value("safepost_takedown_seconds_sum", labels)
    return count or 0.0, total or 0.0


def a_school(tmp_path, fb: RecordingAdapter):
    return a_rig(
        tmp_path,
        an_account("n-fb", kind="facebook", external_id="1", owner="owner.fb"),
        platforms={"facebook": fb},
        tokens=Tokens(),
        takedowns=InMemoryTakedowns(),
        policy=delivery.Policy(retry_seconds=(60, 300), wait_seconds=60),
    )


def shown(rig, post_id: str = "p1") -> contracts.PostApproved:
    event = approved(rig, post_id, accounts=("n-fb",))
    image = event.images[0].model_copy(
        update={
            "shown": [
                contracts.ShownFace(
                    pupil_id="P1", consent_versions=["7:social_media/*:v1"]
                )
            ]
        }
    )
    return event.model_copy(update={"images": [image]})


def withdrawal() -> contracts.ConsentChanged:
    return contracts.ConsentChanged(
        school_id="north",
        pupil_id="P1",
        cause="recorded",
        scopes=[
            contracts.ConsentScope(
                purpose="social_media", platform=None, state="withdrawn"
            )
        ],
        effective_on=date(2030, 1, 1),
        take_down=True,
        changed_at=CHANGED_AT,
    )


def test_each_create_call_is_counted_by_the_platforms_answer(tmp_path) -> None:
    fb = RecordingAdapter("facebook", errors=[TransientError("Graph answered 502")])
    rig = a_school(tmp_path, fb)
    ok, transient = attempts("facebook", "ok"), attempts("facebook", "transient")

    rig.publish(approved(rig, accounts=("n-fb",)))
    rig.ports.now.at += timedelta(seconds=61)
    rig.run()

    assert fb.calls == 2
    assert rig.deliveries.get("p1", "n-fb").status == domain.LIVE
    assert attempts("facebook", "transient") == transient + 1
    assert attempts("facebook", "ok") == ok + 1


def test_a_delivery_that_never_calls_the_platform_counts_no_attempt(tmp_path) -> None:
    fb = RecordingAdapter("facebook")
    rig = a_school(tmp_path, fb)
    account = rig.accounts.get("n-fb")
    rig.accounts.update(replace(account, connection=domain.NEEDS_RECONNECT))
    before = sum(
        attempts("facebook", o) for o in ("ok", "transient", "auth", "unexpected")
    )

    rig.publish(approved(rig, accounts=("n-fb",)))

    assert fb.calls == 0
    assert rig.deliveries.get("p1", "n-fb").status == domain.WAITING
    assert before == sum(
        attempts("facebook", o) for o in ("ok", "transient", "auth", "unexpected")
    )


def test_each_copy_taken_down_observes_its_time_from_the_change(tmp_path) -> None:
    fb = RecordingAdapter("facebook")
    rig = a_school(tmp_path, fb)
    rig.publish(shown(rig))
    count, total = takedowns("facebook")

    rig.handle(withdrawal())
    rig.run()

    gone = rig.deliveries.get("p1", "n-fb")
    assert gone.status == domain.TAKEN_DOWN
    expected = (gone.taken_down_at - CHANGED_AT).total_seconds()
    assert expected > 0
    new_count, new_total = takedowns("facebook")
    assert new_count == count + 1
    assert new_total - total == expected


def test_a_copy_removed_by_hand_observes_its_time_too(tmp_path) -> None:
    fb = RecordingAdapter("facebook")
    fb.delete_errors = [PermanentError("(#200) Permissions error", code="200")]
    rig = a_school(tmp_path, fb)
    rig.publish(shown(rig))
    rig.handle(withdrawal())
    rig.run()
    assert rig.deliveries.get("p1", "n-fb").status == domain.MANUAL
    count, total = takedowns("facebook")
    rig.ports.now.at += timedelta(hours=3)

    gone = takedown.close_manual(
        bootstrap.delivery_engine(rig.ports), "p1", "n-fb", "owner.fb", "Deleted it"
    )

    new_count, new_total = takedowns("facebook")
    assert new_count == count + 1
    assert new_total - total == (gone.taken_down_at - CHANGED_AT).total_seconds()
    assert new_total - total > 3 * 3600
