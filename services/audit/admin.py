"""Administrative functions for the CLI (``safepost audit verify``)."""

from __future__ import annotations

from services.audit import domain
from services.audit.bootstrap import Ports


def verify_chain(ports: Ports) -> domain.VerifyResult:
    """Walk the whole chain; ok, or the first bad seq and why."""
    return domain.verify(ports.log.chain())
