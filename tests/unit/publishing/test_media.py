"""The signed links through which a platform (Instagram) fetches a redacted image:
only a redacted key, only while the link is fresh, only if this system signed it."""

from __future__ import annotations

import time

import pytest

from services.publishing import bootstrap, media
from tests.unit.publishing.builders import IMAGE, SECRET, a_rig


def test_a_signed_link_serves_the_redacted_image_without_signing_in(tmp_path):
    rig = a_rig(tmp_path, secret_key=SECRET, public_url="http://127.0.0.1:9")
    rig.redacted.put("redacted/p1/ph1.jpg", IMAGE)
    url = bootstrap.media_signer(rig.ports)("redacted/p1/ph1.jpg")

    got = rig.app.test_client().get(url.removeprefix("http://127.0.0.1:9/publishing"))

    assert url.startswith("http://127.0.0.1:9/publishing/media/")
    assert got.status_code == 200 and got.data == IMAGE
    assert got.headers["Cache-Control"] == "no-store"


def test_a_forged_or_other_link_is_not_found(tmp_path):
    rig = a_rig(tmp_path, secret_key=SECRET)
    rig.redacted.put("redacted/p1/ph1.jpg", IMAGE)
    forged = media.sign("another-secret-" * 4, "redacted/p1/ph1.jpg")
    original = media.sign(SECRET, "originals/p1/abc.jpg")

    client = rig.app.test_client()

    assert client.get(f"/media/{forged}").status_code == 404
    assert client.get(f"/media/{original}").status_code == 404
    assert client.get("/media/not-a-token").status_code == 404


def test_a_link_expires():
    token = media.sign(SECRET, "redacted/p1/ph1.jpg")
    time.sleep(1.1)

    with pytest.raises(media.MediaLinkError, match="expired"):
        media.open_link(SECRET, token, max_age=0)
    assert media.open_link(SECRET, token) == "redacted/p1/ph1.jpg"
