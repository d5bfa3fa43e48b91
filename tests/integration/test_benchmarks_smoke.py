"""The benchmarks still run: each with its ``--smoke`` flag (tiny N), as a separate
process, must exit 0 (so a broken benchmark is found in CI, not at release time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def test_the_publishing_benchmark_runs_and_finds_no_duplicate_or_loss() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "publishing.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "duplicates 0, losses 0" in done.stdout


def test_the_takedown_benchmark_runs_and_misses_no_copy() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "takedown.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "missed: 0; still live on the sandboxes: 0" in done.stdout
