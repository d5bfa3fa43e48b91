"""Face encoders: dlib's 128-d encodings via face_recognition, or none at all."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import ImageFile

from services.redaction import domain

logger = logging.getLogger(__name__)


class FaceRecognitionEncoder:
    """128-d dlib encodings via face_recognition; all None if it is missing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api: Any = None
        self._loaded = False

    def _module(self) -> Any:
        with self._lock:
            if not self._loaded:
                self._loaded = True
                self._api = _import_face_recognition()
            return self._api

    def encode(
        self, rgb: np.ndarray, boxes: Sequence[domain.Box]
    ) -> list[list[float] | None]:
        api = self._module() if boxes else None
        if api is None:
            return [None] * len(boxes)
        locations = [(top, right, bottom, left) for left, top, right, bottom in boxes]
        with self._lock:
            encodings = api.face_encodings(
                np.ascontiguousarray(rgb), known_face_locations=locations
            )
        return [[float(x) for x in enc] for enc in encodings]


def _import_face_recognition() -> Any:
    # face_recognition calls quit() when its models are missing: look first.
    if importlib.util.find_spec("face_recognition_models") is None:
        logger.warning(
            "face_recognition_models missing: no encodings, every face masked"
        )
        return None
    try:
        import face_recognition
    except ImportError:
        logger.warning("face_recognition missing: no encodings, every face masked")
        return None
    finally:
        # face_recognition sets this on import; we must refuse truncated files.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition


class NoEncoder:
    """An encoder that knows nobody (the CLI): every face stays unidentified."""

    def encode(
        self, rgb: np.ndarray, boxes: Sequence[domain.Box]
    ) -> list[list[float] | None]:
        return [None] * len(boxes)
