"""Text readers (OCR): Debian's tesseract on stdin, or none."""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from services.redaction import domain

logger = logging.getLogger(__name__)


class TesseractTextReader:
    """Readable text via Debian's ``tesseract`` (one line of words per region).

    The photo goes to tesseract on stdin, never through a temporary file (pytesseract
    writes one), so no copy of a child's photo lands outside the originals store. It
    reads the photo at the redacted copy's size: text too small to read there cannot
    identify anyone in what is published. Returns None (OCR unavailable) when the
    binary is missing or fails: the approver is then told so, loudly.
    """

    MIN_CONFIDENCE = 40.0

    def __init__(
        self, *, binary: str = "tesseract", max_side: int = 2048, timeout: float = 60
    ):
        self.binary = binary
        self.max_side = max_side
        self.timeout = timeout

    def read(self, rgb: np.ndarray) -> list[tuple[domain.Box, str]] | None:
        import io
        import shutil
        import subprocess

        path = shutil.which(self.binary)
        if path is None:
            logger.error("tesseract is not installed: OCR unavailable")
            return None
        height, width = rgb.shape[:2]
        size = domain.output_size(width, height, self.max_side)
        grey = Image.fromarray(rgb).convert("L")
        if size != (width, height):
            grey = grey.resize(size, Image.Resampling.BOX)
        buffer = io.BytesIO()
        grey.save(buffer, "PNG", compress_level=1)
        try:
            done = subprocess.run(
                [path, "stdin", "stdout", "--psm", "11", "-l", "eng", "tsv"],
                input=buffer.getvalue(),
                capture_output=True,
                timeout=self.timeout,
                env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            logger.error("tesseract failed (%s): OCR unavailable", type(exc).__name__)
            return None
        if done.returncode != 0:
            logger.error("tesseract exited %s: OCR unavailable", done.returncode)
            return None
        lines = parse_tsv(done.stdout.decode("utf-8", "replace"), self.MIN_CONFIDENCE)
        sx, sy = width / size[0], height / size[1]
        found = []
        for (left, top, right, bottom), text in lines:
            pad = (bottom - top) * 0.25
            box = domain.clip(
                (
                    (left - pad) * sx,
                    (top - pad) * sy,
                    (right + pad) * sx,
                    (bottom + pad) * sy,
                ),
                width,
                height,
            )
            found.append((box, text))
        return found


def parse_tsv(tsv: str, min_confidence: float) -> list[tuple[domain.Box, str]]:
    """Lines of confident words from tesseract's TSV: (union box, words joined)."""
    lines: dict[tuple[str, ...], list[tuple[domain.Box, str]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        try:
            confidence = float(cols[10])
            left, top, w, h = (int(c) for c in cols[6:10])
        except ValueError:
            continue
        if confidence < min_confidence or sum(ch.isalnum() for ch in text) < 2:
            continue
        key = (cols[1], cols[2], cols[3], cols[4])
        lines.setdefault(key, []).append(((left, top, left + w, top + h), text))
    out = []
    for words in lines.values():
        box = (
            min(b[0] for b, _ in words),
            min(b[1] for b, _ in words),
            max(b[2] for b, _ in words),
            max(b[3] for b, _ in words),
        )
        out.append((box, " ".join(t for _, t in words)))
    return out


class NoTextReader:
    """OCR switched off (tests, the benchmark's detector rows): always unavailable."""

    def read(self, rgb: np.ndarray) -> list[tuple[domain.Box, str]] | None:
        return None
