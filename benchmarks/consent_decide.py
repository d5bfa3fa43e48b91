"""Decision time: 30 faces against 1k / 10k / 100k enrolled pupils (synthetic).

Runs the real handler (``admin.decide``) on an SQLite store with synthetic unit
encodings; half the faces are enrolled pupils with consent (so the consent lookup
runs), half strangers. The first call loads the school's gallery into memory; the
figures are for warm calls (the gallery is reloaded only when it changes).

    python benchmarks/consent_decide.py [--sizes 1000,10000,100000] [--runs 200]
"""

from __future__ import annotations

import os

# One BLAS thread: a 30 x N product is too small to split, and threads fighting for
# cores make the tail latency worse (run the consent worker the same way).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, date, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.consent import (  # noqa: E402
    adapters,
    admin,
    bootstrap,  # noqa: E402
)
from services.consent.bootstrap import MIGRATIONS, Ports  # noqa: E402
from shared import contracts, db  # noqa: E402

TODAY = date(2025, 3, 3)


def build(size: int, folder: Path) -> tuple[Ports, np.ndarray]:
    engine = db.make_engine(f"sqlite:///{folder / f'c{size}.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    ports = bootstrap.sql_ports(engine, None, today=lambda: TODAY)
    admin.add_school(ports, "oak", "Oak")
    rng = np.random.default_rng(size)
    vectors = rng.normal(size=(size, 128))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors *= 0.6  # typical dlib encodings have a norm of about 0.6
    at = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            adapters.pupils.insert(),
            [
                {
                    "school_slug": "oak",
                    "pupil_id": f"P{i:06d}",
                    "forename": "F",
                    "surname": f"S{i}",
                    "on_roll": True,
                }
                for i in range(size)
            ],
        )
        conn.execute(
            adapters.consent_records.insert(),
            [
                {
                    "school_slug": "oak",
                    "pupil_id": f"P{i:06d}",
                    "purpose": "social_media",
                    "status": "granted",
                    "expires_on": date(2025, 8, 31),
                    "recorded_by": "b",
                    "recorded_at": at,
                    "version": 1,
                }
                for i in range(size)
            ],
        )
        conn.execute(
            adapters.face_encodings.insert(),
            [
                {
                    "school_slug": "oak",
                    "pupil_id": f"P{i:06d}",
                    "encoding": vectors[i].astype("<f8").tobytes(),
                    "enrolled_by": "b",
                    "enrolled_at": at,
                }
                for i in range(size)
            ],
        )
        conn.execute(adapters.schools.update().values(gallery_version=1))
    return ports, vectors


def event(vectors: np.ndarray, rng: np.random.Generator) -> contracts.FacesDetected:
    picks = rng.choice(len(vectors), 15, replace=False)
    known = [vectors[i] + rng.normal(scale=0.01, size=128) for i in picks]
    strangers = [v * 0.6 / np.linalg.norm(v) for v in rng.normal(size=(15, 128))]
    return contracts.FacesDetected(
        photo_id="p",
        post_id="q",
        school_id="oak",
        width=1,
        height=1,
        platforms=["facebook"],
        faces=[
            contracts.DetectedFace(index=i, box=(0, 0, 1, 1), encoding=e.tolist())
            for i, e in enumerate(known + strangers)
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print(
        f"{'enrolled':>9} {'load ms':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'max ms':>7}  shown"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            ports, vectors = build(size, Path(tmp))
            rng = np.random.default_rng(7)
            events = [event(vectors, rng) for _ in range(args.runs)]
            started = time.perf_counter()
            admin.decide(ports, events[0])  # loads the gallery
            load = (time.perf_counter() - started) * 1000
            times, shown = [], 0
            for e in events:
                t0 = time.perf_counter()
                decided = admin.decide(ports, e)
                times.append((time.perf_counter() - t0) * 1000)
                shown += sum(d.show for d in decided.decisions)
            p50, p95 = np.percentile(times, [50, 95])
            print(
                f"{size:>9} {load:>8.0f} {p50:>7.2f} {p95:>7.2f} {max(times):>7.2f}"
                f"  {shown / len(events):.1f}/30"
            )


if __name__ == "__main__":
    main()
