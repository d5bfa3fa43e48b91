"""Polling for something that happens on another thread or process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    probe: Callable[[], Any],
    timeout: float = 5.0,
    *,
    interval: float = 0.01,
    what: str | None = None,
) -> Any:
    """Call ``probe`` until it returns something truthy and return that; fail (an
    AssertionError naming ``what`` or the probe) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what or getattr(probe, "__name__", repr(probe))
            raise AssertionError(
                f"gave up after {timeout}s waiting for {name}; last saw {value!r}"
            )
        time.sleep(interval)
