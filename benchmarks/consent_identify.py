"""Identification accuracy of consent on faces_dir/identity (and strangers).

Enrols one reference photo per person with consent's own enrolment encoder (HOG box,
face_recognition encoding), then identifies every face that the redaction pipeline
(CenterFace + face_recognition encodings, exactly the service's code) finds in the
other identity photos, plus every labelled face of faces_dir/detection as strangers.
Prints true-accept and false-accept rates per tolerance (margin fixed, see domain).

    python benchmarks/consent_identify.py [FACES_DIR]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.consent import adapters as consent  # noqa: E402
from services.consent import domain  # noqa: E402
from services.redaction import adapters, imaging  # noqa: E402
from services.redaction import domain as rdomain  # noqa: E402

ENROL = {"barack_obama": "obama.jpg", "joe_biden": "biden.jpg"}
# Near-copies of the enrolment photos (README notes): counted apart, not as evidence.
COPIES = {
    "obama_small.jpg",
    "obama_240p.jpg",
    "obama_partial_face.jpg",
    "obama_partial_face2.jpg",
    "two_people.jpg",
    "obama3.jpg",
}
TOLERANCES = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60)


def main() -> None:
    faces = Path(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get(
            "SAFEPOST_FACES_DIR", REPO.parent / "shared" / "data" / "faces"
        )
    )
    enroller = consent.FaceRecognitionEnroller()
    detector, encoder = adapters.CenterFaceDetector(), adapters.FaceRecognitionEncoder()
    limits = rdomain.Limits()
    rows = [
        (p, consent.np.asarray(enroller.encode((faces / "identity" / f).read_bytes())))
        for p, f in ENROL.items()
    ]
    gallery = consent.build_gallery(0, rows)

    def probe(path: Path) -> list[list[float] | None]:
        rgb = imaging.pixels(imaging.decode(path.read_bytes(), limits))
        boxes = [b for b, _ in detector.detect(rgb)]
        return encoder.encode(rgb, boxes) if boxes else []

    genuine: list[tuple[str, str, domain.Nearest]] = []  # (image, truth, nearest)
    strangers: list[tuple[str, domain.Nearest]] = []
    for rec in json.loads((faces / "identity" / "identity.json").read_text()):
        if rec["image"] in ENROL.values():
            continue
        found = [e for e in probe(faces / "identity" / rec["image"]) if e is not None]
        near = consent.nearest(gallery, dict(enumerate(found)))
        for n in near.values():
            if n.pupil_id in rec["persons"] and n.distance < 0.6:
                genuine.append((rec["image"], n.pupil_id, n))
            else:
                strangers.append((rec["image"], n))
    for rec in json.loads((faces / "detection" / "annotations.json").read_text()):
        rgb = imaging.pixels(
            imaging.decode((faces / "detection" / rec["image"]).read_bytes(), limits)
        )
        found = [
            e
            for e in encoder.encode(rgb, [tuple(b) for b in rec["faces"]])
            if e is not None
        ]
        near = consent.nearest(gallery, dict(enumerate(found)))
        strangers += [(rec["image"], n) for n in near.values()]

    independent = [g for g in genuine if g[0] not in COPIES]
    print(f"enrolled: {', '.join(ENROL)}; margin {domain.MARGIN}")
    print(
        f"genuine faces: {len(genuine)} ({len(independent)} independent photos); "
        f"strangers: {len(strangers)}"
    )
    print(
        "genuine distances: "
        + ", ".join(
            f"{img}={n.distance:.3f}"
            for img, _, n in sorted(genuine, key=lambda g: g[2].distance)
        )
    )
    print(f"closest stranger: {min(n.distance for _, n in strangers):.3f}")
    print(
        f"{'tolerance':>9} {'TAR':>8} {'TAR(indep)':>11} {'FAR':>8} "
        f"{'false accepts':>14}"
    )
    for tol in TOLERANCES:
        tar = sum(domain.classify(n, tol).pupil_id == t for _, t, n in genuine)
        tar_i = sum(domain.classify(n, tol).pupil_id == t for _, t, n in independent)
        fa = sum(domain.classify(n, tol).pupil_id is not None for _, n in strangers)
        mark = "  <- chosen" if tol == domain.TOLERANCE else ""
        print(
            f"{tol:>9.2f} {tar / len(genuine):>8.1%} "
            f"{tar_i / max(1, len(independent)):>11.1%} "
            f"{fa / len(strangers):>8.2%} {fa:>14}{mark}"
        )


if __name__ == "__main__":
    main()
