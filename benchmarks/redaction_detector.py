"""Masking recall of the redaction service on the labelled photos (faces_dir/detection).

Runs exactly the service's decode -> CenterFace -> mask -> JPEG path with every face
masked, then checks each labelled face in the output: it counts as masked when at least
90% of its box's pixels changed. Prints recall by face height band, false-positive
masks (a mask matching no labelled or ignored face), and seconds per image / megapixel.

    python benchmarks/redaction_detector.py [FACES_DIR] [--threshold 0.2] [--growth 1.3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Score exactly as the main redaction benchmark does (same folder, so importable).
from redaction import MASKED_SHARE, changed_share, matches  # noqa: E402

from services.redaction import adapters, domain, imaging  # noqa: E402

BANDS = (("<20", 0, 20), ("20-39", 20, 40), (">=40", 40, 10**9))


def run_image(
    detector: adapters.CenterFaceDetector, path: Path, limits: domain.Limits
) -> tuple[dict[str, object], float, float]:
    started = time.perf_counter()
    image = imaging.decode(path.read_bytes(), limits)
    rgb = imaging.pixels(image)
    t0 = time.perf_counter()
    found = detector.detect(rgb)
    detect_s = time.perf_counter() - t0
    faces = [domain.Face(i, box, score) for i, (box, score) in enumerate(found)]
    target = domain.output_size(image.width, image.height, limits.max_side)
    outcomes = domain.decide_masks(
        faces, [], source=image.size, target=target, growth=limits.mask_growth
    )
    rendered = imaging.render(image, outcomes, limits)
    total_s = time.perf_counter() - started
    after = np.asarray(Image.open(io.BytesIO(rendered.jpeg)).convert("RGB"))
    assert target == image.size, "benchmark images are compared in their own pixels"
    return (
        {"rgb": rgb, "after": after, "masks": [o.box for o in outcomes]},
        detect_s,
        total_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get(
        "SAFEPOST_FACES_DIR", str(REPO.parent / "shared/data/faces")
    )
    parser.add_argument("faces_dir", nargs="?", default=default)
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--growth", type=float, default=domain.MASK_GROWTH)
    args = parser.parse_args()
    root = Path(args.faces_dir) / "detection"
    annotations = json.loads((root / "annotations.json").read_text())
    detector = adapters.CenterFaceDetector(threshold=args.threshold)
    detector.session()  # load once, outside the timings
    limits = domain.Limits(mask_growth=args.growth)
    hits = {name: 0 for name, _, _ in BANDS}
    totals = dict.fromkeys(hits, 0)
    false_pos = masks_made = 0
    detect_time = total_time = megapixels = 0.0
    print(f"{'image':58} {'faces':>5} {'masked':>6} {'masks':>5} {'FP':>3} {'s':>6}")
    for entry in annotations:
        result, detect_s, total_s = run_image(detector, root / entry["image"], limits)
        rgb, after = result["rgb"], result["after"]
        masks: list[domain.Box] = result["masks"]  # type: ignore[assignment]
        masked_here = 0
        for box in entry["faces"]:
            band = next(n for n, lo, hi in BANDS if lo <= box[3] - box[1] < hi)
            totals[band] += 1
            if changed_share(rgb, after, box) >= MASKED_SHARE:  # type: ignore[arg-type]
                hits[band] += 1
                masked_here += 1
        labels = entry["faces"] + entry["ignore"]
        fps = sum(not any(matches(m, label) for label in labels) for m in masks)
        false_pos += fps
        masks_made += len(masks)
        detect_time += detect_s
        total_time += total_s
        megapixels += entry["width"] * entry["height"] / 1e6
        print(
            f"{entry['image']:58} {len(entry['faces']):>5} {masked_here:>6} "
            f"{len(masks):>5} {fps:>3} {total_s:>6.3f}"
        )
    print()
    print(
        f"threshold {args.threshold}, mask growth {args.growth}, "
        f"masked = >= {MASKED_SHARE:.0%} of the box's pixels changed"
    )
    for name, _, _ in BANDS:
        share = hits[name] / totals[name] if totals[name] else float("nan")
        print(
            f"recall, faces {name:>5} px tall: {hits[name]:>3}/{totals[name]:<3} "
            f"= {share:.1%}"
        )
    all_hits, all_faces = sum(hits.values()), sum(totals.values())
    print(
        f"recall, all faces:            {all_hits:>3}/{all_faces:<3} "
        f"= {all_hits / all_faces:.1%}"
    )
    print(
        f"false-positive masks: {false_pos} of {masks_made} masks "
        f"({len(annotations)} images)"
    )
    n = len(annotations)
    print(
        f"seconds per image: {total_time / n:.3f} "
        f"(detection alone {detect_time / n:.3f})"
    )
    print(
        f"seconds per megapixel: {total_time / megapixels:.3f} "
        f"(detection alone {detect_time / megapixels:.3f})"
    )


if __name__ == "__main__":
    main()
