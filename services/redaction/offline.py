"""Redact one file on disk with exactly the service's code.

Without ``decide`` no pupil is known: every face and every text region is masked
(reason ``unknown``). With ``decide`` (e.g. consent's decision function for a school)
its answer is applied as the service would. Used by ``safepost redact``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.redaction import adapters, domain, handlers
from shared import contracts
from shared.storage import MemoryBlobStore

_detector: adapters.CenterFaceDetector | None = None
_lock = threading.Lock()


def detector() -> adapters.CenterFaceDetector:
    """One CenterFace session per process."""
    global _detector
    with _lock:
        if _detector is None:
            _detector = adapters.CenterFaceDetector()
        return _detector


def redact_file(
    input_path: str | Path,
    output_path: str | Path,
    report_path: str | Path | None = None,
    *,
    limits: domain.Limits | None = None,
    decide: Callable[[contracts.FacesDetected], contracts.FacesDecided] | None = None,
    reader: Any = None,
) -> dict[str, Any]:
    """Write a redacted copy of ``input_path``; return (and write) the report.

    Boxes are the regions actually masked (or, for a shown face, its box), in the
    output image's pixels. ``decide`` answers for the faces and texts (default: mask
    everything). A file that cannot be processed safely raises PhotoRefusedError
    (its ``reason`` says why).
    """
    data = Path(input_path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    post_id = photo_id = digest[:32]
    stores = {area: MemoryBlobStore() for area in ("originals", "redacted", "previews")}
    stores["originals"].put(f"originals/{post_id}/{digest}.img", data)
    records, limits = adapters.MemoryPhotoRecords(), limits or domain.Limits()
    submitted = contracts.PostSubmitted(
        post_id=post_id,
        school_id="cli",
        author_id="cli",
        accounts=["cli"],
        photos=[
            contracts.PhotoRef(
                photo_id=photo_id,
                sha256=digest,
                bytes=max(1, len(data)),
                original_key=f"originals/{post_id}/{digest}.img",
            )
        ],
    )
    [detected] = handlers.detect_faces(
        submitted,
        originals=stores["originals"],
        detector=detector(),
        encoder=adapters.FaceRecognitionEncoder() if decide else adapters.NoEncoder(),
        reader=reader or adapters.TesseractTextReader(),
        records=records,
        limits=limits,
    )
    if isinstance(detected, contracts.PhotoRefused):
        raise domain.PhotoRefusedError(detected.reason, detected.detail)
    assert isinstance(detected, contracts.FacesDetected)
    if decide is None:
        decided = contracts.FacesDecided(
            photo_id=photo_id, post_id=post_id, school_id="cli"
        )
    else:
        decided = decide(detected)
    [redacted] = handlers.redact_photo(
        decided,
        originals=stores["originals"],
        redacted=stores["redacted"],
        previews=stores["previews"],
        records=records,
        limits=limits,
    )
    assert isinstance(redacted, contracts.PhotoRedacted)
    Path(output_path).write_bytes(stores["redacted"].get(redacted.redacted_key))
    report = {
        "faces": [
            {
                "box": list(f.box),
                "masked": f.masked,
                "reason": f.reason,
                "pupil_id": f.pupil_id,
            }
            for f in redacted.faces
        ],
        "texts": [
            {"box": list(t.box), "masked": t.masked, "reason": t.reason}
            for t in redacted.texts
        ],
        "ocr": redacted.ocr,
        "width": redacted.width,
        "height": redacted.height,
    }
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n")
    return report
