"""The enrolled encodings of each school as one in-memory matrix (FaceGallery)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.consent.adapters.tables import face_encodings, pupils, schools
from services.consent.domain import ENCODING_DIMS, Nearest


@dataclass(frozen=True)
class _Gallery:
    version: int
    matrix: np.ndarray  # rows of 128-d encodings (float32), grouped by pupil
    squares: np.ndarray  # squared norm of each row
    owners: np.ndarray  # row -> index into pupil_ids
    starts: np.ndarray  # pupil index -> first row; rows of a pupil are contiguous
    ends: np.ndarray
    pupil_ids: tuple[str, ...]


class SqlFaceGallery:
    """The enrolled encodings of each school as one in-memory matrix.

    Loaded per school and reloaded whenever the school's ``gallery_version`` has moved
    (one small query per photo), so a deletion in any process is seen by the next
    decision in every process.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._cache: dict[str, _Gallery] = {}

    def nearest(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, Nearest]:
        return nearest(self._gallery(school_id), encodings)

    def _gallery(self, school_id: str) -> _Gallery:
        with self.engine.connect() as conn:
            version = conn.execute(
                sa.select(schools.c.gallery_version).where(schools.c.slug == school_id)
            ).scalar()
            if version is None:
                return _EMPTY
            cached = self._cache.get(school_id)
            if cached is not None and cached.version == version:
                return cached
            rows = conn.execute(
                sa.select(face_encodings.c.pupil_id, face_encodings.c.encoding)
                .join(
                    pupils,
                    sa.and_(
                        pupils.c.school_slug == face_encodings.c.school_slug,
                        pupils.c.pupil_id == face_encodings.c.pupil_id,
                    ),
                )
                .where(face_encodings.c.school_slug == school_id, pupils.c.on_roll)
                .order_by(face_encodings.c.pupil_id, face_encodings.c.id)
            ).all()
        gallery = build_gallery(
            version, [(r.pupil_id, np.frombuffer(r.encoding, "<f8")) for r in rows]
        )
        self._cache[school_id] = gallery
        return gallery


def build_gallery(version: int, rows: Sequence[tuple[str, np.ndarray]]) -> _Gallery:
    """A gallery from (pupil id, encoding) rows, grouped by pupil id."""
    rows = sorted(rows, key=lambda r: r[0])
    ids = tuple(dict.fromkeys(p for p, _ in rows))
    position = {p: i for i, p in enumerate(ids)}
    matrix = (
        np.ascontiguousarray(np.vstack([e for _, e in rows]), dtype=np.float32)
        if rows
        else np.zeros((0, ENCODING_DIMS), dtype=np.float32)
    )
    owners = np.array([position[p] for p, _ in rows], dtype=np.int64)
    starts = np.searchsorted(owners, np.arange(len(ids)), side="left")
    ends = np.searchsorted(owners, np.arange(len(ids)), side="right")
    squares = (matrix.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    return _Gallery(version, matrix, squares, owners, starts, ends, ids)


_EMPTY = build_gallery(-1, [])


def nearest(
    gallery: _Gallery, encodings: Mapping[int, Sequence[float]]
) -> dict[int, Nearest]:
    """For each face: the closest pupil (over all their encodings) and the distance
    to the closest *other* pupil. One float32 matrix product for all faces finds the
    candidates; the two distances reported are recomputed exactly (float64)."""
    out = {i: Nearest(None) for i in encodings}  # malformed or none: nobody
    faces = [
        i
        for i, e in encodings.items()
        if len(e) == ENCODING_DIMS and bool(np.isfinite(np.asarray(e, float)).all())
    ]
    if not faces or gallery.matrix.shape[0] == 0:
        return out
    probe = np.asarray([encodings[i] for i in faces], dtype=np.float64)
    squared = (
        gallery.squares[None, :]
        + (probe.astype(np.float32) ** 2).sum(axis=1)[:, None]
        - 2.0 * (probe.astype(np.float32) @ gallery.matrix.T)
    )
    best_rows = squared.argmin(axis=1)
    for k, face in enumerate(faces):
        row = int(best_rows[k])
        owner = int(gallery.owners[row])
        rest = squared[k].copy()
        rest[gallery.starts[owner] : gallery.ends[owner]] = np.inf
        second_row = int(rest.argmin())
        second = (
            _distance(probe[k], gallery.matrix[second_row])
            if np.isfinite(rest[second_row])
            else float("inf")
        )
        own = gallery.matrix[gallery.starts[owner] : gallery.ends[owner]]
        best = min(_distance(probe[k], e) for e in own)
        out[face] = Nearest(gallery.pupil_ids[owner], best, second)
    return out


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b.astype(np.float64)))
