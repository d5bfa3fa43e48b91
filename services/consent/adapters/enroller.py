"""Enrolment: reference photo -> encoding (the photo is never stored)."""

from __future__ import annotations

import importlib.util
import io
import threading
from typing import Any

import numpy as np

from shared.errors import InvalidInputError

MAX_REFERENCE_PIXELS = 40_000_000


class EnrolmentError(InvalidInputError):
    code = "bad_reference_photo"


class FaceRecognitionEnroller:
    """One 128-d face_recognition encoding per reference photo (exactly one face)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api: Any = None

    def _module(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = _import_face_recognition()
            return self._api

    def encode(self, photo: bytes, name: str = "photo") -> list[float]:
        rgb = _decode_reference(photo, name)
        api = self._module()
        with self._lock:
            locations = api.face_locations(rgb, number_of_times_to_upsample=1)
            if not locations:
                locations = api.face_locations(rgb, number_of_times_to_upsample=2)
            if len(locations) != 1:
                found = "no face" if not locations else f"{len(locations)} faces"
                raise EnrolmentError(
                    f"{name}: {found} found; a reference photo must show exactly one"
                )
            [encoding] = api.face_encodings(rgb, known_face_locations=locations)
        return [float(x) for x in encoding]


def _decode_reference(photo: bytes, name: str) -> np.ndarray:
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # face_recognition turns it on; refuse
    try:
        with Image.open(io.BytesIO(photo)) as img:
            if img.width * img.height > MAX_REFERENCE_PIXELS:
                raise EnrolmentError(f"{name}: the image is too large")
            img.load()
            upright = ImageOps.exif_transpose(img).convert("RGB")
            return np.asarray(upright, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, EnrolmentError):
            raise
        raise EnrolmentError(f"{name}: not a readable image") from None
    except Image.DecompressionBombError:
        raise EnrolmentError(f"{name}: the image is too large") from None


def _import_face_recognition() -> Any:
    from PIL import ImageFile

    # face_recognition calls quit() when its models are missing: look first.
    if importlib.util.find_spec("face_recognition_models") is None:
        raise EnrolmentError("face recognition is not installed here", status=503)
    try:
        import face_recognition
    except ImportError:
        raise EnrolmentError(
            "face recognition is not installed here", status=503
        ) from None
    finally:
        # face_recognition sets this on import; never rely on it.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition
