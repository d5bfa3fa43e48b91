"""Whether a post fits each target account, checked before anyone approves it
(``publishing.check_fit`` -> ``post.fit_checked``). Placeholder: filled in next."""

from __future__ import annotations

from typing import Any

from shared.bus import HandlerMap


def handlers(ports: Any) -> HandlerMap:
    """This module's handlers, bound to publishing's ports (merged into the map)."""
    return {}
