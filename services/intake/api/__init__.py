"""Intake's HTTP side: the teacher's upload page and the device register page
(``pages``), and the JSON API: uploads and deletion confirmations (``uploads``), the
device register and enrolment (``devices``).

Uploads need BOTH a staff identity (teacher of the school; bearer token or session
cookie, from ``shared.auth``) and an approved device token of that staff member:
``X-Device-Token`` from the uploader, or the HttpOnly ``safepost_device`` cookie a
browser gets when it exchanges an enrolment code on the upload page.
"""

from __future__ import annotations

from services.intake.api import devices, pages, uploads
from services.intake.api.common import bp

__all__ = ["bp", "devices", "pages", "uploads"]
