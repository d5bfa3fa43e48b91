"""Redaction's adapters, by responsibility: its records (SQL tables, the unit of work,
the in-memory records), the face detector, the face encoder and the text reader (OCR).

The names are re-exported here so ``from services.redaction import adapters`` keeps
working for the bootstrap, the offline redactor, the tests and the benchmarks.
"""

from services.redaction.adapters.detector import (
    CenterFaceDetector,
    centerface_model_path,
    decode_centerface,
    nms,
)
from services.redaction.adapters.encoder import FaceRecognitionEncoder, NoEncoder
from services.redaction.adapters.ocr import NoTextReader, TesseractTextReader, parse_tsv
from services.redaction.adapters.records import (
    MemoryPhotoRecords,
    RedactionUnit,
    SqlPhotoRecords,
    metadata,
    outbox,
    photos,
)

__all__ = [
    "CenterFaceDetector",
    "FaceRecognitionEncoder",
    "MemoryPhotoRecords",
    "NoEncoder",
    "NoTextReader",
    "RedactionUnit",
    "SqlPhotoRecords",
    "TesseractTextReader",
    "centerface_model_path",
    "decode_centerface",
    "metadata",
    "nms",
    "outbox",
    "parse_tsv",
    "photos",
]
