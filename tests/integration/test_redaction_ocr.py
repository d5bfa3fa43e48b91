"""Real tesseract: text in a photo is found, a pupil's name masked, the rest flagged."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image, ImageDraw, ImageFont

from services.redaction import adapters, imaging
from services.redaction.bootstrap import Ports
from shared import contracts
from tests.unit.redaction.fakes import a_post, changed_fraction, fake_ports, handle

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def a_certificate() -> Image.Image:
    image = Image.new("RGB", (1200, 500), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=64)
    draw.text((80, 80), "CERTIFICATE OF MERIT", fill=(20, 20, 20), font=font)
    draw.text((80, 300), "ADA LOVELACE", fill=(20, 20, 20), font=font)
    return image


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_tesseract_reads_the_lines_of_a_certificate():
    rgb = imaging.pixels(a_certificate())

    found = adapters.TesseractTextReader().read(rgb)

    assert found is not None
    words = " ".join(text for _, text in found)
    assert "CERTIFICATE" in words and "LOVELACE" in words


def test_a_name_consent_recognises_is_masked_and_the_rest_shown_and_flagged():
    base = fake_ports()
    ports = Ports(**{**base.__dict__, "reader": adapters.TesseractTextReader()})
    [found] = handle(a_post(ports, jpeg(a_certificate())), ports)
    decisions = [
        contracts.TextDecision(
            index=t.index,
            mask="LOVELACE" in t.text,
            reason="pupil_name" if "LOVELACE" in t.text else "readable_text",
        )
        for t in found.texts
    ]
    decided = contracts.FacesDecided(
        photo_id=found.photo_id,
        post_id=found.post_id,
        school_id=found.school_id,
        texts=decisions,
    )

    [done] = handle(decided, ports)

    assert done.ocr == "ok"
    name = next(t for t in done.texts if t.reason == "pupil_name")
    other = next(t for t in done.texts if t.reason == "readable_text")
    after = Image.open(io.BytesIO(ports.redacted.get(done.redacted_key)))
    assert name.masked and changed_fraction(a_certificate(), after, name.box) > 0.9
    assert not other.masked
    assert changed_fraction(a_certificate(), after, other.box) == 0.0


def test_a_missing_tesseract_is_reported_as_unavailable_not_skipped():
    reader = adapters.TesseractTextReader(binary="tesseract-not-installed")

    assert reader.read(imaging.pixels(a_certificate())) is None
