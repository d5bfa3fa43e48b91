"""Intake's pure rules: sniffing types, splitting accounts, names."""

from __future__ import annotations

import pytest

from services.intake import domain
from shared.errors import InvalidInputError
from tests.unit.intake.builders import a_jpeg, a_png


@pytest.mark.parametrize(
    ("head", "ext"),
    [
        (a_jpeg()[:32], "jpg"),
        (a_png()[:32], "png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "heic"),
    ],
)
def test_the_type_is_told_by_the_first_bytes(head, ext):
    kind = domain.sniff(head)

    assert kind is not None and kind.ext == ext


def test_anything_else_is_not_an_image():
    assert domain.sniff(b"GIF89a.....") is None
    assert domain.sniff(b"") is None


def test_accounts_may_be_repeated_or_comma_separated_and_are_not_doubled():
    assert domain.split_accounts(["a, b", "c", "a"]) == ("a", "b", "c")


def test_an_account_id_with_odd_characters_is_refused():
    with pytest.raises(InvalidInputError):
        domain.split_accounts(["../etc"])


def test_a_file_name_keeps_only_its_base_name():
    assert domain.safe_filename("C:\\Users\\me\\IMG_1.jpg") == "IMG_1.jpg"
    assert domain.safe_filename("../../x/\x00y.png") == "y.png"
