"""The pipeline benchmark still runs: ``--smoke`` (two photos in a burst, every service
as its own processes over RabbitMQ, PostgreSQL and S3, one redaction worker) exits 0,
prints its table with both posts timed, and draws its PNG."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FACES, port_open, unavailable

REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.faces]


def test_the_pipeline_benchmark_times_every_post_and_plots_the_queues(
    tmp_path: Path,
) -> None:
    if not (port_open("127.0.0.1", 5672) and port_open("127.0.0.1", 5432)):
        unavailable("the pipeline benchmark needs RabbitMQ and PostgreSQL")
    if shutil.which("rabbitmqctl") is None:
        unavailable("the pipeline benchmark makes its own vhost with rabbitmqctl")
    if not (FACES / "detection" / "annotations.json").exists():
        pytest.skip(f"labelled photos not found at {FACES}")
    png = tmp_path / "pipeline.png"

    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "pipeline.py"),
            "--smoke",
            "--plot",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )

    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    # the run's row, printed as it ends and again in the table (the load it reports
    # may differ between the two): the table's
    rows = [line for line in done.stdout.splitlines() if line.startswith("processes")]
    assert rows, done.stdout
    row = rows[-1]
    cells = row.split()
    assert cells[1:5] == ["lane", "1", "burst", "2"], row  # queues, workers, N
    assert float(cells[5]) > 0, row  # posts a minute reaching the approver
    assert cells[-1] == "0", row  # nothing dead-lettered
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
