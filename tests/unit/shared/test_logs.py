"""shared.logs: JSON lines carrying the service and the ids from logs.context."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator

import pytest

from shared import logs

logger = logging.getLogger("tests.shared.logs")


Lines = Callable[[], list[dict[str, object]]]


@pytest.fixture()
def lines() -> Iterator[Lines]:
    """JSON logging configured for 'consent'; a function reading the lines so far."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.configure("consent", "DEBUG")
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout
    out = io.StringIO()
    handler.setStream(out)

    def read() -> list[dict[str, object]]:
        return [json.loads(x) for x in out.getvalue().splitlines()]

    yield read
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_a_line_is_json_with_the_service_and_level(lines: Lines) -> None:
    logger.info("photo %s redacted", "ph1")

    [line] = lines()
    assert line["service"] == "consent"
    assert line["level"] == "INFO"
    assert line["msg"] == "photo ph1 redacted"
    assert line["logger"] == "tests.shared.logs"
    assert str(line["ts"]).endswith("+00:00")


def test_lines_inside_a_context_carry_its_ids(lines: Lines) -> None:
    with logs.context(correlation_id="c-1", message_id="m-1", type="faces.detected"):
        logger.info("handled")
        with logs.context(message_id="m-2", request_id=None):
            logger.info("nested")
    logger.info("after")

    handled, nested, after = lines()
    assert (handled["correlation_id"], handled["message_id"]) == ("c-1", "m-1")
    assert handled["type"] == "faces.detected"
    assert (nested["correlation_id"], nested["message_id"]) == ("c-1", "m-2")
    assert "request_id" not in nested
    assert "correlation_id" not in after and "message_id" not in after


def test_extra_fields_are_kept(lines: Lines) -> None:
    logger.info("request", extra={"ms": 12.5, "user": "u1"})

    [line] = lines()
    assert (line["ms"], line["user"]) == (12.5, "u1")


def test_an_error_line_carries_its_traceback(lines: Lines) -> None:
    try:
        raise ValueError("bad file")
    except ValueError:
        logger.exception("dead-lettered")

    [line] = lines()
    assert line["level"] == "ERROR"
    assert "ValueError: bad file" in str(line["traceback"])


def test_noisy_libraries_are_quietened(lines: Lines) -> None:
    logging.getLogger("botocore.endpoint").info("sending request")

    assert lines() == []


def test_the_context_is_empty_outside(lines: Lines) -> None:
    with logs.context(correlation_id="c-1"):
        assert logs.current() == {"correlation_id": "c-1"}

    assert logs.current() == {}
