"""Per-platform limits checked before approval: each boundary exactly at and one past
the limit, the footer counted, X's weighted counting, Instagram's aspect ratio."""

from __future__ import annotations

import pytest

from services.publishing.limits import ImageInfo, Problem, check, with_footer

MB = 1024 * 1024
FOOTER = "Oakfield Academy Trust, registered in England no. 01234567"


def a_photo(
    width: int = 1080, height: int = 1080, size: int = 500_000, kind: str = "image/jpeg"
) -> ImageInfo:
    return ImageInfo(width=width, height=height, bytes=size, content_type=kind)


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


@pytest.mark.parametrize(
    ("platform", "limit"),
    [
        ("x", 280),
        ("instagram", 2200),
        ("linkedin", 3000),
        ("facebook", 63_206),
        ("webhook", 10_000),
        ("folder", 10_000),
    ],
)
def test_a_caption_fits_at_the_limit_and_not_one_past_it(platform, limit):
    at = check(platform, "a" * limit, "", [a_photo()])
    past = check(platform, "a" * (limit + 1), "", [a_photo()])

    assert at == []
    assert codes(past) == ["caption_too_long"]
    assert f"{limit + 1:,} characters" in past[0].message


def test_the_footer_counts_towards_the_caption():
    room = 280 - len("\n\n") - len(FOOTER)

    fits = check("x", "a" * room, FOOTER, [a_photo()])
    [problem] = check("x", "a" * (room + 1), FOOTER, [a_photo()])

    assert fits == []
    assert problem.code == "caption_too_long"
    assert problem.message.startswith(
        "The caption is 281 characters with the footer; X allows 280"
    )


def test_x_counts_a_link_as_23_characters_however_long_it_is():
    link = "https://www.oakfield.example.sch.uk/news/2030/sports-day-results-and-photos"
    caption = "a" * 256 + " " + link  # 256 + 1 + 23 = 280 weighted

    assert len(caption) > 280
    assert check("x", caption, "", [a_photo()]) == []
    assert codes(check("x", "a" + caption, "", [a_photo()])) == ["caption_too_long"]


def test_x_counts_cjk_characters_twice():
    assert check("x", "運" * 140, "", [a_photo()]) == []
    [problem] = check("x", "運" * 141, "", [a_photo()])
    assert "282 characters" in problem.message


def test_other_platforms_count_characters_not_weights():
    assert check("instagram", "運" * 2200, "", [a_photo()]) == []


@pytest.mark.parametrize(
    ("platform", "most"),
    [("x", 4), ("instagram", 10), ("linkedin", 20), ("facebook", 10)],
)
def test_the_number_of_photos_is_checked_at_both_ends(platform, most):
    assert check(platform, "hi", "", [a_photo()] * most) == []
    assert codes(check(platform, "hi", "", [a_photo()] * (most + 1))) == [
        "too_many_images"
    ]
    assert codes(check(platform, "hi", "", [])) == ["too_few_images"]


def test_a_website_or_folder_takes_any_number_of_photos():
    assert check("webhook", "hi", "", [a_photo()] * 40) == []
    assert check("folder", "hi", "", []) == []


@pytest.mark.parametrize(
    ("platform", "limit"),
    [("x", 5 * MB), ("instagram", 8 * MB), ("linkedin", 5 * MB), ("facebook", 4 * MB)],
)
def test_a_photo_may_be_exactly_the_size_limit_and_not_a_byte_more(platform, limit):
    assert check(platform, "hi", "", [a_photo(size=limit)]) == []
    [problem] = check(platform, "hi", "", [a_photo(size=limit + 1)])
    assert problem.code == "image_too_large"
    assert problem.message.startswith("Photo 1 is")


def test_instagram_takes_jpeg_only_where_x_also_takes_png():
    png = a_photo(kind="image/png")

    [problem] = check("instagram", "hi", "", [a_photo(), png])

    assert problem == Problem(
        "unsupported_format",
        "Photo 2 is a PNG file; Instagram accepts JPEG only.",
    )
    assert check("x", "hi", "", [png]) == []
    assert codes(check("linkedin", "hi", "", [a_photo(kind="image/webp")])) == [
        "unsupported_format"
    ]


@pytest.mark.parametrize(
    ("width", "height", "fits"),
    [
        (800, 1000, True),  # 4:5 exactly
        (799, 1000, False),  # a pixel taller
        (1910, 1000, True),  # 1.91:1 exactly
        (1911, 1000, False),  # a pixel wider
        (1080, 1080, True),
    ],
)
def test_instagram_takes_shapes_from_4_5_to_1_91_1(width, height, fits):
    problems = check("instagram", "hi", "", [a_photo(width, height)])

    assert (problems == []) is fits
    if not fits:
        assert codes(problems) == ["aspect_ratio"]
        assert "never crops" in problems[0].message


def test_other_platforms_take_any_shape():
    tall = a_photo(600, 2000)

    assert check("x", "hi", "", [tall]) == []
    assert check("facebook", "hi", "", [tall]) == []


def test_linkedin_needs_fewer_than_its_pixel_limit():
    assert check("linkedin", "hi", "", [a_photo(36_152_319, 1)]) == []
    assert codes(check("linkedin", "hi", "", [a_photo(36_152_320, 1)])) == [
        "image_too_many_pixels"
    ]


def test_every_problem_is_reported_at_once():
    photos = [a_photo(600, 2000, 9 * MB, "image/png")] * 11

    problems = check("instagram", "a" * 2300, FOOTER, photos)

    assert codes(problems)[:2] == ["caption_too_long", "too_many_images"]
    assert codes(problems).count("aspect_ratio") == 11


def test_the_published_text_is_the_caption_a_blank_line_and_the_footer():
    assert with_footer("Sports day!", FOOTER) == f"Sports day!\n\n{FOOTER}"
    assert with_footer("Sports day!\n", f" {FOOTER}\n") == f"Sports day!\n\n{FOOTER}"
    assert with_footer("Sports day!  ", "") == "Sports day!  "
    assert with_footer("", FOOTER) == FOOTER


def test_an_unknown_platform_is_an_error_not_a_pass():
    with pytest.raises(ValueError):
        check("myspace", "hi", "", [a_photo()])
