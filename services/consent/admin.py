"""Administrative functions for the CLI and the demo seed."""

from __future__ import annotations

from services.consent import domain
from services.consent.bootstrap import Ports
from shared.errors import InvalidInputError


def add_school(ports: Ports, slug: str, name: str) -> bool:
    """Create a school unless it exists (idempotent); True if it was created."""
    if not domain.SLUG.match(slug):
        raise InvalidInputError("a school slug is 2-40 of a-z, 0-9 and -")
    if not name.strip():
        raise InvalidInputError("a school needs a name")
    return ports.schools.add_school(domain.School(slug, name.strip()))


def list_schools(ports: Ports) -> list[domain.School]:
    return ports.schools.schools()
