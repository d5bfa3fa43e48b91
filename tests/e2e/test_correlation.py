"""One correlation id from an HTTP upload's log line to the worker's log lines: the
embedded system (every service in one process), its JSON log lines captured."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from werkzeug.test import Client

from safepost import demo, embedded
from shared import logs

CORRELATION = "upload-7f3a9c"


@pytest.fixture()
def lines() -> Iterator[io.StringIO]:
    """Every JSON log line written while the test runs (any thread)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("safepost"))
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(saved)


@pytest.fixture()
def system(tmp_path: Path) -> Iterator[tuple[embedded.System, dict[str, str]]]:
    system = embedded.build(tmp_path / "var")
    passwords = {u.username: u.password for u in demo.seed(system.ports)}
    system.start_workers()
    try:
        yield system, passwords
    finally:
        system.shutdown()


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]


def a_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 140, 60)).save(out, "JPEG")
    return out.getvalue()


def test_an_uploads_correlation_id_reaches_the_workers_log_lines(
    system: tuple[embedded.System, dict[str, str]], lines: io.StringIO
) -> None:
    running, passwords = system
    client = Client(running.wsgi)
    signed_in = client.post(
        "/auth/token",
        json={
            "username": "teacher.oakfield",
            "password": passwords["teacher.oakfield"],
        },
    )
    headers = {
        "Authorization": f"Bearer {signed_in.json['token']}",
        "Accept": "application/json",
    }
    code = demo.demo_device_codes(running.ports["intake"])["teacher.oakfield"]
    enrolled = client.post("/intake/api/enrol", json={"code": code}, headers=headers)
    assert enrolled.status_code == 201, enrolled.text
    headers["X-Device-Token"] = enrolled.json["token"]

    uploaded = client.post(
        "/intake/api/posts",
        headers={**headers, "X-Correlation-Id": CORRELATION},
        data={
            "caption": "Sports day",
            "school": "oakfield",
            "accounts": demo.folder_account("oakfield"),
            "photos": (io.BytesIO(a_photo()), "day.jpg", "image/jpeg"),
        },
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.headers["X-Correlation-Id"] == CORRELATION

    def handled() -> list[dict[str, Any]]:
        return [
            line
            for line in parsed(lines)
            if line.get("correlation_id") == CORRELATION
            and line.get("type") == "post.submitted"
            and str(line["msg"]).startswith("handled post.submitted")
        ]

    deadline = time.monotonic() + 30
    while len(handled()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)

    [request_line] = [
        line
        for line in parsed(lines)
        if line["msg"] == "POST /api/posts 201" and line["logger"] == "shared.web"
    ]
    assert request_line["correlation_id"] == CORRELATION
    assert request_line["request_id"] != CORRELATION  # its own id beside it
    worker_lines = handled()
    # approval and audit both handle post.submitted, each in its own worker thread
    assert len(worker_lines) >= 2, [
        (x.get("correlation_id"), x["msg"]) for x in parsed(lines)
    ]
    assert all(line["message_id"] for line in worker_lines)
