"""Publishing's fit check: whether a post fits each target account before approval."""

from __future__ import annotations

from services.publishing import domain, fit
from shared import contracts
from shared.testing import InMemoryBlobStore
from tests.unit.publishing.builders import (
    a_rig,
    an_account,
    an_image,
    check_fit,
)
from tests.unit.publishing.fakes import InMemoryAccountDirectory

FOOTER = "Oakfield Academy Trust, registered in England no. 01234567."


def a_store(*images: bytes, post_id: str = "p1") -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    for n, data in enumerate(images, start=1):
        store.put(f"redacted/{post_id}/ph{n}.jpg", data)
    return store


def keys(count: int) -> tuple[str, ...]:
    return tuple(f"redacted/p1/ph{n}.jpg" for n in range(1, count + 1))


def answers(command, *accounts, store=None):
    [checked] = fit.check_fit(
        command,
        accounts=InMemoryAccountDirectory(*accounts),
        redacted=store if store is not None else a_store(an_image()),
    )
    assert isinstance(checked, contracts.PostFitChecked)
    assert (checked.post_id, checked.school_id) == (command.post_id, "north")
    return {a.account_id: a for a in checked.accounts}


def test_a_post_that_fits_says_so_for_each_account_with_its_name_and_platform():
    accounts = (an_account("newsroom"), an_account("page", kind="facebook"))

    got = answers(check_fit(accounts=("newsroom", "page")), *accounts)

    assert got == {
        "newsroom": contracts.AccountFit(
            account_id="newsroom", platform="folder", name="newsroom folder", fits=True
        ),
        "page": contracts.AccountFit(
            account_id="page", platform="facebook", name="page folder", fits=True
        ),
    }


def test_the_caption_is_counted_with_the_accounts_footer():
    caption = "Sports day! " + "a" * 230
    bare = an_account("tweets", kind="x")
    footed = an_account("trust-x", kind="x", footer=FOOTER)

    got = answers(
        check_fit(accounts=("tweets", "trust-x"), caption=caption), bare, footed
    )

    assert got["tweets"].fits
    assert not got["trust-x"].fits
    [problem] = got["trust-x"].problems
    assert "with the footer" in problem and "X allows 280" in problem


def test_an_x_account_gets_xs_price_and_a_link_costs_more():
    account = an_account("tweets", kind="x")

    plain = answers(check_fit(accounts=("tweets",)), account)["tweets"]
    linked = answers(
        check_fit(accounts=("tweets",), caption="Results: https://example.org/r"),
        account,
    )["tweets"]

    assert plain.note.startswith("X charges US$0.015")
    assert "with a link" in linked.note and "0.200" in linked.note
    assert plain.fits and linked.fits


def test_a_link_in_the_footer_is_priced_too():
    account = an_account("tweets", kind="x", footer="More at https://oakfield.org.uk")

    got = answers(check_fit(accounts=("tweets",)), account)["tweets"]

    assert "with a link" in got.note


def test_instagram_refuses_a_png_and_a_photo_too_tall_for_its_shapes():
    store = a_store(an_image(800, 1600, "PNG"))
    account = an_account("gram", kind="instagram")

    got = answers(check_fit(accounts=("gram",)), account, store=store)["gram"]

    assert not got.fits
    assert got.problems == [
        "Photo 1 is a PNG file; Instagram accepts JPEG only.",
        "Photo 1 is too tall for Instagram (800 x 1600 pixels); it takes shapes from "
        "4:5 (portrait) to 1.91:1 (landscape). Upload a cropped copy: Safepost never "
        "crops a photo itself.",
    ]


def test_too_many_photos_for_x_do_not_fit_but_fit_the_folder():
    store = a_store(*(an_image(400, 300) for _ in range(5)))
    accounts = (an_account("tweets", kind="x"), an_account("newsroom"))

    got = answers(
        check_fit(accounts=("tweets", "newsroom"), keys=keys(5)), *accounts, store=store
    )

    assert got["tweets"].problems == ["This post has 5 photos; X allows at most 4."]
    assert got["newsroom"].fits


def test_an_unknown_account_or_another_schools_does_not_fit_and_is_not_described():
    theirs = an_account("their-page", school="south", kind="facebook")

    got = answers(check_fit(accounts=("their-page", "nowhere")), theirs)

    for account_id in ("their-page", "nowhere"):
        assert got[account_id] == contracts.AccountFit(
            account_id=account_id, platform="", fits=False, problems=[fit.NOT_OURS]
        )


def test_a_missing_redacted_copy_does_not_fit_and_is_said_once():
    account = an_account("page", kind="facebook")

    got = answers(check_fit(accounts=("page",)), account, store=InMemoryBlobStore())

    assert got["page"].problems == [
        "Photo 1 could not be read: its redacted copy is missing or damaged."
    ]


def test_a_damaged_image_does_not_fit_even_a_folder():
    store = a_store(b"\xff\xd8\xff not really a jpeg")

    got = answers(check_fit(), an_account(), store=store)

    assert not got["newsroom"].fits
    assert got["newsroom"].problems[0].startswith("Photo 1 could not be read")


def test_an_account_waiting_for_reconnection_fits_with_a_note_that_posts_wait():
    account = an_account("page", kind="facebook", connection=domain.NEEDS_RECONNECT)

    got = answers(check_fit(accounts=("page",)), account)["page"]

    assert got.fits
    assert "needs reconnecting" in got.note


def test_the_same_question_gets_the_same_answer():
    store = a_store(an_image())
    directory = InMemoryAccountDirectory(an_account("tweets", kind="x"))
    command = check_fit(accounts=("tweets",))

    first = fit.check_fit(command, accounts=directory, redacted=store)
    again = fit.check_fit(command, accounts=directory, redacted=store)

    assert first == again


def test_publishings_handler_map_answers_check_fit(tmp_path):
    rig = a_rig(tmp_path, an_account("page", kind="facebook"))
    rig.redacted.put("redacted/p1/ph1.jpg", an_image())

    [checked] = rig.handle(check_fit(accounts=("page",)))

    assert checked == contracts.PostFitChecked(
        post_id="p1",
        school_id="north",
        accounts=[
            contracts.AccountFit(
                account_id="page", platform="facebook", name="page folder", fits=True
            )
        ],
    )
