"""Consent's HTTP API and pages: schools, pupils, consent, never-publish, enrolment.

Everything about pupils is for the school's admins only (``admin`` for that school or
trust-wide); the never-publish flag too: there is no separate designated-safeguarding
role, so admin is the restricted role. Reads come from the read side (``ports.views``);
each write is a use case (``use_cases``) in one unit of work, with its
``ConsentChanged`` in the outbox, sent after the commit (see docs/architecture.md
"Consent" for why not a command to the worker).
"""

from flask import Blueprint

bp = Blueprint("consent", __name__, template_folder="../templates")

from services.consent.api import pages, routes  # noqa: E402, F401  (their routes)
