"""Whether a post fits each target account, checked before anyone approves it
(``publishing.check_fit`` -> ``post.fit_checked``, issue 9 section 4).

For each target account: the caption with the account's footer, the number of
images, their formats, byte sizes, pixels and shape, against ``limits`` (nothing is
ever truncated or cropped, so a post that does not fit says so before approval); for
X, what X charges for the post. An account publishing does not know, or one of
another school, does not fit (default deny) and is named by nothing but its id.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

from services.publishing import domain, limits
from services.publishing.platforms import x
from services.publishing.ports import AccountDirectory
from shared import contracts
from shared.storage import BlobNotFoundError, BlobStore, InvalidKeyError

logger = logging.getLogger(__name__)

NOT_OURS = "This is not one of the school's publishing accounts."
UNSUPPORTED = "Safepost cannot publish to this kind of account."
WAITS = {
    domain.NEEDS_RECONNECT: "The account needs reconnecting: an approved post waits "
    "until an admin reconnects it.",
    domain.DISABLED: "The account is disabled: an approved post waits until it is "
    "enabled again.",
}


def check_fit(
    command: contracts.CheckFit, *, accounts: AccountDirectory, redacted: BlobStore
) -> list[contracts.Message]:
    """Answer, per target account, whether the post fits it and if not every reason
    in plain words (with X's price as a note); the same command gives the same
    answer."""
    images = [read_image(redacted, image.redacted_key) for image in command.images]
    answers = [
        account_fit(command, account_id, accounts.get(account_id), images)
        for account_id in dict.fromkeys(command.accounts)
    ]
    logger.info(
        "post %s: fit checked for %d account(s), %d do not fit",
        command.post_id,
        len(answers),
        sum(not a.fits for a in answers),
    )
    return [
        contracts.PostFitChecked(
            post_id=command.post_id, school_id=command.school_id, accounts=answers
        )
    ]


def account_fit(
    command: contracts.CheckFit,
    account_id: str,
    account: domain.Account | None,
    images: Sequence[limits.ImageInfo | None],
) -> contracts.AccountFit:
    """One account's answer (``None`` images could not be read)."""
    if account is None or account.school_id != command.school_id:
        return contracts.AccountFit(
            account_id=account_id, platform="", fits=False, problems=[NOT_OURS]
        )
    if account.kind not in limits.RULES:
        problems = [UNSUPPORTED]
    else:
        problems = [
            f"Photo {n} could not be read: its redacted copy is missing or damaged."
            for n, image in enumerate(images, start=1)
            if image is None
        ]
        readable = [i or limits.ImageInfo(0, 0, 0, "") for i in images]
        found = limits.check(account.kind, command.caption, account.footer, readable)
        problems += _readable_only(found, images)
    return contracts.AccountFit(
        account_id=account_id,
        platform=account.kind,
        name=account.name,
        fits=not problems,
        problems=problems,
        note=_note(command.caption, account),
    )


def _readable_only(
    found: Sequence[limits.Problem], images: Sequence[limits.ImageInfo | None]
) -> list[str]:
    """The limits' problems in words, without those about a photo that could not be
    read (already said once, in plainer words)."""
    unreadable = tuple(
        f"Photo {n} " for n, i in enumerate(images, start=1) if i is None
    )
    return [p.message for p in found if not p.message.startswith(unreadable)]


def read_image(store: BlobStore, key: str) -> limits.ImageInfo | None:
    """The redacted image's byte size, type and pixel size (from its header), or
    None if it is missing or not an image."""
    try:
        data = store.get(key)
    except (BlobNotFoundError, InvalidKeyError):
        logger.warning("redacted image %s not found for the fit check", key)
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            kind = Image.MIME.get(image.format or "", "")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        logger.warning("redacted image %s could not be read for the fit check", key)
        return None
    return limits.ImageInfo(width, height, len(data), kind)


def _note(caption: str, account: domain.Account) -> str:
    notes = []
    if account.kind == "x":
        notes.append(x.cost_note(limits.with_footer(caption, account.footer)))
    if account.status in WAITS:
        notes.append(WAITS[account.status])
    return " ".join(notes)
