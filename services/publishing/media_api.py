"""The one public route of publishing: a redacted image behind a short-lived signed
link, fetched by a platform (Instagram) that cannot sign in. Nothing else is public."""

from __future__ import annotations

from flask import Blueprint, Response

from services.publishing import media
from shared import auth, web
from shared.errors import NotFoundError
from shared.storage import BlobNotFoundError

bp = Blueprint("publishing_media", __name__)


@bp.get("/media/<token>")
@auth.public
def redacted_image(token: str) -> Response:
    """The redacted image a signed link names (404 for a bad or expired link)."""
    ports = web.ports()
    try:
        key = media.open_link(ports.secret_key, token)
        data = ports.redacted.get(key)
    except (media.MediaLinkError, BlobNotFoundError):
        raise NotFoundError("no such image (the link may have expired)") from None
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "no-store"
    return response
