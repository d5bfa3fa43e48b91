"""The trust's register of approved sites (policy 004 §5): which platforms schools may
publish to, the answers to the trust's due-diligence checklist, who approved each site
and when, and who withdrew it and why.

IT keeps it for the whole trust: only trust-wide IT (``it_auditor@*``) or a trust-wide
admin (``admin@*``) may change it; school admins see it read-only. An account can be
added or connected only on an approved site. Withdrawing a site disables nothing
silently: its accounts stay, and the delivery loop holds their posts with the reason
``site_not_approved`` (it asks ``is_approved``) until IT approves the site again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from services.publishing import domain
from services.publishing.bootstrap import Ports
from services.publishing.ports import SiteRegister
from shared import auth, contracts
from shared.errors import ConflictError, ForbiddenError, InvalidInputError

logger = logging.getLogger(__name__)

NAMES = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "x": "X (Twitter)",
    "linkedin": "LinkedIn",
    "webhook": "School website (webhook)",
    "folder": "Shared folder",
}
MAX_ANSWER = 2000
MAX_NOTE = 1000

# The due-diligence checklist IT answers before a site goes in the register. Policy
# 004 §5 asks for "an agreed checklist of safeguards"; these questions come from
# what the policy then requires of school accounts: §7.1 (the trust's details and
# registered-office text on the profile, an approved logo), §7.3 (parents'
# permission, nothing identifying a child, the headteacher's confirmation before a
# post goes live, a designated staff member posting) and §8 (the platform's terms of
# use, reporting content that disparages the trust, protecting privacy).
CHECKLIST: tuple[tuple[str, str], ...] = (
    (
        "audience",
        "Who can see the school's posts (anyone, signed-in users, followers), and "
        "can the school limit that?",
    ),
    (
        "data_location",
        "Where does the platform store the posts and images (country), and under "
        "what data-protection terms (UK GDPR transfer safeguards)?",
    ),
    (
        "removal",
        "How does the school take a post down, how quickly does it disappear, and "
        "does the platform keep a copy afterwards?",
    ),
    (
        "minimum_age",
        "What is the platform's minimum age, and how does it fit the pupils and "
        "families who will follow the account?",
    ),
    (
        "reporting_abuse",
        "How are abusive comments, impersonation or content about the trust "
        "reported, and who at the school watches for it (§8)?",
    ),
    (
        "comments_and_tags",
        "Can comments, tagging of people and resharing be limited or turned off on "
        "school posts?",
    ),
    (
        "terms_of_use",
        "Do the platform's terms of use allow an organisation's account posting as "
        "the school, and who has read them (§8)?",
    ),
    (
        "profile_standard",
        "Can the profile show the trust's details, the registered-office text and "
        "an approved logo as §7.1 requires?",
    ),
    (
        "account_security",
        "How is the account secured (two-step sign-in for everyone who manages it, "
        "who holds the credentials, what happens when a person leaves)?",
    ),
)
QUESTIONS = dict(CHECKLIST)


def name(platform: str) -> str:
    return NAMES.get(platform, platform)


def may_change(identity: auth.Identity) -> bool:
    """Only trust-wide IT or a trust-wide admin keeps the register."""
    return identity.has("it_auditor", auth.TRUST_WIDE) or identity.has(
        "admin", auth.TRUST_WIDE
    )


def require_keeper(identity: auth.Identity) -> None:
    """403 unless the identity may change the register."""
    if not may_change(identity):
        raise ForbiddenError(
            "only the trust's IT (it_auditor@*) or a trust-wide admin may change the "
            "register of approved sites",
            code="not_register_keeper",
        )


def is_approved(ports: Ports, platform: str) -> bool:
    """Whether accounts on this platform may be added, connected and published to
    (default deny: a platform the register does not list is not approved)."""
    if ports.sites is None:
        return False
    site = ports.sites.get(platform)
    return site is not None and site.approved


def register(ports: Ports) -> list[domain.Site]:
    """Every platform, in the order of ``domain.KINDS``: its entry, or a bare
    unapproved one when IT has never looked at it."""
    kept = {s.platform: s for s in (ports.sites.all() if ports.sites else [])}
    return [
        kept.get(p) or domain.Site(platform=p, approved=False) for p in domain.KINDS
    ]


def approve(
    ports: Ports, platform: str, answers: Mapping[str, Any], by: str
) -> domain.Site:
    """Put the platform in the register as approved, with every checklist question
    answered; a site approved before is approved again with the new answers."""
    _check_platform(platform)
    checked = _answers(answers)
    site = domain.Site(
        platform=platform,
        approved=True,
        answers=checked,
        approved_by=by,
        approved_at=ports.now(),
    )
    with ports.unit() as unit:
        _sites(unit.sites).put(site)
        unit.emit(
            contracts.SiteChanged(
                platform=platform,
                approved=True,
                by=by,
                answers={str(k): str(v) for k, v in site.answers.items()},
            )
        )
        unit.commit()
    logger.info("site %s approved by %s", platform, by)
    return site


def withdraw(ports: Ports, platform: str, by: str, note: str) -> domain.Site:
    """Take the platform's approval away (with the reason): its accounts stay, and
    their posts wait with ``site_not_approved`` until it is approved again."""
    _check_platform(platform)
    note = note.strip()
    if not note:
        raise InvalidInputError("say why the site is withdrawn", code="note_required")
    if len(note) > MAX_NOTE:
        raise InvalidInputError(f"the note is longer than {MAX_NOTE} characters")
    with ports.unit() as unit:
        sites = _sites(unit.sites)
        site = sites.get(platform)
        if site is None or not site.approved:
            raise ConflictError(
                f"{name(platform)} is not approved, so it cannot be withdrawn",
                code="site_not_approved",
            )
        withdrawn = replace(
            site, approved=False, withdrawn_by=by, withdrawn_at=ports.now(), note=note
        )
        sites.put(withdrawn)
        unit.emit(
            contracts.SiteChanged(
                platform=platform, approved=False, by=by, note=withdrawn.note
            )
        )
        unit.commit()
    logger.info("site %s withdrawn by %s", platform, by)
    return withdrawn


def _sites(register: SiteRegister | None) -> SiteRegister:
    if register is None:
        raise ConflictError(
            "the register of approved sites is not available", code="no_register"
        )
    return register


def _check_platform(platform: str) -> None:
    if platform not in domain.KINDS:
        raise InvalidInputError(
            f"unknown platform {platform!r}; one of " + ", ".join(domain.KINDS),
            code="unknown_platform",
        )


def _answers(answers: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(set(answers) - set(QUESTIONS))
    if unknown:
        raise InvalidInputError(
            "not on the checklist: " + ", ".join(unknown), code="unknown_question"
        )
    checked: dict[str, str] = {}
    missing = []
    for key, question in CHECKLIST:
        value = answers.get(key)
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            missing.append(question)
        elif len(text) > MAX_ANSWER:
            raise InvalidInputError(
                f"the answer to {question!r} is longer than {MAX_ANSWER} characters"
            )
        checked[key] = text
    if missing:
        raise InvalidInputError(
            "every question of the due-diligence checklist must be answered; "
            "unanswered: " + " / ".join(missing),
            code="checklist_incomplete",
        )
    return checked
