"""Approval asks publishing whether a post fits each target account before anyone
approves it, refuses an approval while an answer says it does not, and keeps each
post's newest state per account (issue 9 sections 4 and 5)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.approval import domain
from shared import contracts
from tests.unit.approval.builders import (
    a_fit,
    a_rig,
    awaiting,
    decision,
    delivery,
    fit_checked,
    redacted,
    submitted,
)

TOO_LONG = "The caption is 312 characters with the footer; X allows 280."


def revision(
    photo_id: str, number: int, post_id: str = "p1"
) -> contracts.PhotoRedacted:
    event = redacted(photo_id, post_id)
    return event.model_copy(
        update={
            "revision": number,
            "redacted_key": f"redacted/{post_id}/{photo_id}-r{number}.jpg",
        }
    )


def fits_of(rig, post_id="p1"):
    return rig.book.fits([post_id]).get(post_id, {})


def state_of(rig, account="newsroom", post_id="p1"):
    return rig.book.deliveries([post_id]).get(post_id, {}).get(account)


def approved(rig, post_id="p1", accounts=("newsroom",)):
    awaiting(rig, post_id, accounts=accounts)
    [event] = rig.handle(decision(post_id))
    assert isinstance(event, contracts.PostApproved)


# -- the question -------------------------------------------------------------------


def test_a_post_awaiting_approval_asks_publishing_whether_it_fits_each_account():
    rig = a_rig()
    rig.handle(submitted(photos=("ph1", "ph2"), accounts=("newsroom", "tweets")))
    halfway = rig.handle(redacted("ph1"))

    out = rig.handle(redacted("ph2"))

    assert halfway == []
    assert out == [
        contracts.CheckFit(
            post_id="p1",
            school_id="north",
            caption="Sports day",
            accounts=["newsroom", "tweets"],
            images=[
                contracts.FitImage(photo_id="ph1", redacted_key="redacted/p1/ph1.jpg"),
                contracts.FitImage(photo_id="ph2", redacted_key="redacted/p1/ph2.jpg"),
            ],
        )
    ]
    assert {a: f.state for a, f in fits_of(rig).items()} == {
        "newsroom": domain.CHECKING,
        "tweets": domain.CHECKING,
    }


def test_photos_reported_before_the_post_arrives_are_checked_when_it_does():
    rig = a_rig()
    rig.handle(redacted("ph1"))

    [check] = rig.handle(submitted())

    assert isinstance(check, contracts.CheckFit)
    assert [i.redacted_key for i in check.images] == ["redacted/p1/ph1.jpg"]


def test_a_re_rendered_revision_is_checked_again_and_the_old_answer_set_aside():
    rig = a_rig()
    awaiting(rig)
    rig.handle(
        fit_checked("p1", a_fit("newsroom", TOO_LONG, platform="x", name="Trust X"))
    )

    [check] = rig.handle(revision("ph1", 1))

    assert [i.redacted_key for i in check.images] == ["redacted/p1/ph1-r1.jpg"]
    assert fits_of(rig)["newsroom"].state == domain.CHECKING
    assert fits_of(rig)["newsroom"].name == "Trust X"  # still named while checking


def test_an_older_revision_arriving_late_asks_nothing():
    rig = a_rig()
    awaiting(rig)
    rig.handle(revision("ph1", 2))

    out = rig.handle(revision("ph1", 1))

    assert out == []


def test_nothing_is_asked_while_another_photo_is_still_being_re_rendered():
    rig = a_rig()
    awaiting(rig, photos=("ph1", "ph2"))
    rig.handle(
        contracts.ReviseRedaction(
            photo_id="ph2",
            post_id="p1",
            school_id="north",
            revision=1,
            requested_by="u-approver",
        )
    )

    out = rig.handle(revision("ph1", 1))
    last = rig.handle(revision("ph2", 1))

    assert out == []
    assert [i.redacted_key for i in last[0].images] == [
        "redacted/p1/ph1-r1.jpg",
        "redacted/p1/ph2-r1.jpg",
    ]


def test_a_post_still_redacting_or_already_approved_is_not_asked_about():
    rig = a_rig()
    approved(rig)

    redelivered_submission = rig.handle(submitted())

    assert redelivered_submission == []


# -- the answer ---------------------------------------------------------------------


def test_the_answer_is_kept_per_account_and_a_redelivery_changes_nothing():
    rig = a_rig()
    awaiting(rig, accounts=("newsroom", "tweets"), checked=False)
    answer = fit_checked(
        "p1",
        a_fit("newsroom"),
        a_fit("tweets", TOO_LONG, platform="x", name="Trust X", note="X charges"),
    )

    assert rig.handle(answer) == []
    first = fits_of(rig)
    rig.handle(answer)

    assert fits_of(rig) == first
    assert first["newsroom"] == domain.Fit(
        "newsroom", True, "folder", "Newsroom folder"
    )
    assert first["tweets"] == domain.Fit(
        "tweets", False, "x", "Trust X", (TOO_LONG,), "X charges"
    )


def test_an_answer_about_another_schools_post_or_an_untargeted_account_is_ignored():
    rig = a_rig()
    awaiting(rig, checked=False)

    rig.handle(fit_checked("p1", a_fit("newsroom", "no"), school="south"))
    rig.handle(fit_checked("p1", a_fit("elsewhere", "no")))
    rig.handle(fit_checked("nope", a_fit("newsroom", "no")))

    assert fits_of(rig)["newsroom"].state == domain.CHECKING
    assert "elsewhere" not in fits_of(rig)
    assert fits_of(rig, "nope") == {}


# -- the approval rule --------------------------------------------------------------


def test_a_post_that_does_not_fit_an_account_is_not_approved():
    rig = a_rig()
    awaiting(rig, accounts=("newsroom", "tweets"), checked=False)
    rig.handle(
        fit_checked("p1", a_fit("newsroom"), a_fit("tweets", TOO_LONG, platform="x"))
    )

    [refusal] = rig.handle(decision())

    assert isinstance(refusal, contracts.DecisionRefused)
    assert refusal.code == "does_not_fit"
    assert rig.book.get("p1").status == domain.AWAITING


def test_it_can_be_rejected_with_a_reason_instead():
    rig = a_rig()
    awaiting(rig, checked=False)
    rig.handle(fit_checked("p1", a_fit("newsroom", TOO_LONG)))

    [rejected] = rig.handle(decision(approve=False, reason="Shorten the caption"))

    assert isinstance(rejected, contracts.PostRejected)


def test_once_a_new_answer_says_it_fits_it_can_be_approved():
    rig = a_rig()
    awaiting(rig, checked=False)
    rig.handle(fit_checked("p1", a_fit("newsroom", TOO_LONG)))
    rig.handle(fit_checked("p1", a_fit("newsroom")))

    [approved_event] = rig.handle(decision())

    assert isinstance(approved_event, contracts.PostApproved)


def test_a_check_still_running_does_not_stop_the_worker_approving():
    rig = a_rig()
    awaiting(rig, checked=False)

    [approved_event] = rig.handle(decision())

    assert isinstance(approved_event, contracts.PostApproved)


def test_the_refusal_names_each_account_and_problem():
    rig = a_rig()
    awaiting(rig, accounts=("newsroom", "tweets"), checked=False)
    rig.handle(
        fit_checked(
            "p1",
            a_fit("newsroom"),
            a_fit("tweets", TOO_LONG, "Photo 1 is a HEIC file.", platform="x"),
        )
    )
    post = rig.book.get("p1")

    reasons = domain.misfits(post, fits_of(rig))

    assert reasons == [
        f"Tweets x (x): {TOO_LONG}",
        "Tweets x (x): Photo 1 is a HEIC file.",
    ]


# -- the state per account ----------------------------------------------------------


def test_the_newest_state_per_account_is_kept_and_older_or_repeated_ones_ignored():
    rig = a_rig()
    approved(rig)
    sending = delivery("sending", minute=1, attempts=1)
    live = delivery("live", minute=2, attempts=1, url="https://facebook.com/p/1")

    rig.handle(sending)
    rig.handle(live)
    rig.handle(sending)  # older, arriving late
    rig.handle(live)  # redelivered

    kept = state_of(rig)
    assert (kept.state, kept.url, kept.attempts) == ("live", live.url, 1)
    assert kept.at == datetime(2030, 1, 1, 10, 2, tzinfo=UTC)
    assert kept.timed


def test_a_retry_keeps_its_time_and_attempt():
    rig = a_rig()
    approved(rig)
    retry_at = datetime(2030, 1, 1, 10, 42, tzinfo=UTC)

    rig.handle(delivery("waiting", reason="retrying", attempts=1, retry_at=retry_at))

    kept = state_of(rig)
    assert (kept.state, kept.reason, kept.retry_at) == ("waiting", "retrying", retry_at)
    assert domain.describe_delivery(kept) == "Retrying at 10:42 UTC (attempt 2)"


def test_a_state_for_an_unknown_post_or_an_account_it_does_not_target_is_ignored():
    rig = a_rig()
    approved(rig)

    rig.handle(delivery("live", post_id="nope"))
    rig.handle(delivery("live", account="elsewhere"))
    rig.handle(delivery("live", school="south"))

    assert rig.book.deliveries(["p1", "nope"]) == {}


def test_published_without_any_update_shows_live_and_never_keeps_a_path():
    rig = a_rig()
    approved(rig, accounts=("newsroom", "page"))

    rig.handle(
        contracts.PostPublished(
            post_id="p1",
            school_id="north",
            account="newsroom",
            target="folder",
            location="/srv/safepost/published/north/newsroom/p1",
        )
    )
    rig.handle(
        contracts.PostPublished(
            post_id="p1",
            school_id="north",
            account="page",
            target="facebook",
            location="https://facebook.com/123_456",
        )
    )

    folder, page = state_of(rig), state_of(rig, "page")
    assert (folder.state, folder.url, folder.timed) == ("live", "", False)
    assert domain.describe_delivery(folder) == "Live — published to the school's folder"
    assert (page.state, page.url) == ("live", "https://facebook.com/123_456")
    assert rig.book.get("p1").status == domain.PUBLISHED  # unchanged status logic


def test_a_summary_never_overrides_what_delivery_updates_said():
    rig = a_rig()
    approved(rig)
    rig.handle(delivery("taken_down", minute=5))

    rig.handle(
        contracts.PostPublished(
            post_id="p1",
            school_id="north",
            account="newsroom",
            target="facebook",
            location="https://facebook.com/1",
        )
    )

    assert state_of(rig).state == "taken_down"


def test_a_failure_then_going_live_shows_live_and_a_late_failure_does_not_undo_it():
    rig = a_rig()
    approved(rig)
    failed = contracts.PublishFailed(
        post_id="p1",
        school_id="north",
        account="newsroom",
        reason="media_rejected",
        detail="(#324) Requires a valid image",
    )
    published = contracts.PostPublished(
        post_id="p1",
        school_id="north",
        account="newsroom",
        target="facebook",
        location="https://facebook.com/1",
    )

    rig.handle(failed)
    shown_failed = domain.describe_delivery(state_of(rig))
    rig.handle(published)
    rig.handle(failed)  # redelivered

    assert shown_failed == "Failed: (#324) Requires a valid image"
    assert state_of(rig).state == "live"
    assert rig.book.get("p1").status == domain.FAILED  # unchanged status logic


def test_a_naive_time_is_read_as_utc():
    rig = a_rig()
    approved(rig)
    event = delivery("sending").model_copy(update={"at": datetime(2030, 1, 1, 10)})

    rig.handle(event)

    assert state_of(rig).at == datetime(2030, 1, 1, 10, tzinfo=UTC)
