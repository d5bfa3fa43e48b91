"""A school website's webhook receiver, as ``services.publishing.platforms.webhook``
documents it: signed JSON posts in, one post per Idempotency-Key, delete, lookup and
the recent list.

Routes (the receiver URL is ``{base_url}/webhook``):

- ``POST /webhook``           a post; 201 ``{"id", "url"}`` (200 with the first post's
  id and URL when its Idempotency-Key was seen before; 422 if that key came with
  another body);
- ``GET /webhook?since=ISO``  the recent posts, newest first, ``page_size`` (50; or
  ``limit``, 1-100) at a time: while more follow, the answer carries
  ``Link: </webhook?since=...&after=CURSOR>; rel="next"`` (RFC 8288), the cursor
  pointing after the page's last post;
- ``GET /webhook/<id>``       one post's ``{"id", "url"}``, or 404;
- ``DELETE /webhook/<id>``    takes it down (body ``{"event": "post.deleted", "id"}``);
- ``GET /posts/<id>``         the public page of one post (its ``url``);
- ``GET /``                   every post with its images.

Every ``/webhook`` request must carry a fresh, valid signature (``verify_signature``):
401 otherwise. Errors are ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request

from safepost.sandboxes.common import Sandbox, page
from services.publishing.platforms.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_SECONDS,
    parse_idempotency_header,
    verify_signature,
)

DEMO_SECRET = "sandbox-webhook-shared-secret-not-for-production"
PATH = "/webhook"
IMAGE_TYPES = ("image/jpeg", "image/png")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ERRORS = {
    "expired_token": (401, "bad_signature", "The signature does not match."),
    "rate_limited": (429, "rate_limited", "Too many posts; try again later."),
    "server_error": (500, "server_error", "The website failed to save the post."),
    "refuse": (422, "content_rejected", "The website's moderation refused the post."),
}
RETRY_AFTER_SECONDS = 30
PAGE_SIZE, MAX_PAGE_SIZE = 50, 100  # posts per page of the recent list


class RefusedError(Exception):
    """A request the receiver answers with an error (status, code, message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class WebhookSandbox(Sandbox):
    name = "webhook"
    page_size = PAGE_SIZE

    def __init__(
        self,
        secret: str = DEMO_SECRET,
        latency: tuple[float, float] = (0.0, 0.0),
        tolerance: int = TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(latency)
        self.secret = secret
        self.tolerance = tolerance
        self.clock = clock
        self.keys: dict[str, tuple[str, str]] = {}  # key -> (post id, body sha256)
        self._install()

    @property
    def receiver_url(self) -> str:
        """What an account's ``Destination.base_url`` is set to."""
        return f"{self.base_url}{PATH}"

    # -- routes -----------------------------------------------------------------------

    def _install(self) -> None:
        app = self.app
        reset = app.view_functions["_reset"]

        def _reset_keys() -> Any:
            with self.state.lock:
                self.keys.clear()
            return reset()

        app.view_functions["_reset"] = _reset_keys
        app.add_url_rule(PATH, "create", self._guarded(self._create), methods=["POST"])
        app.add_url_rule(PATH, "recent", self._guarded(self._recent), methods=["GET"])
        app.add_url_rule(
            f"{PATH}/<post_id>", "lookup", self._guarded(self._lookup), methods=["GET"]
        )
        app.add_url_rule(
            f"{PATH}/<post_id>",
            "delete",
            self._guarded(self._delete),
            methods=["DELETE"],
        )
        app.add_url_rule("/posts/<post_id>", "post_page", self._post_page)
        app.add_url_rule("/", "index", self._index)

    def _guarded(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        """Faults first, then the signature, then the route; ``drop_after`` and
        ``malformed`` are applied after the route has done its work."""

        def view(**kwargs: Any) -> Response:
            fault = self.fault()
            if fault in _ERRORS:
                return self._fault_answer(fault or "")
            if fault == "timeout":
                self.hold()
            try:
                self._check_signature()
                answer = handler(**kwargs)
            except RefusedError as exc:
                return _error(exc.status, exc.code, exc.message)
            if fault == "drop_after":
                return _drop()
            if fault == "malformed":
                return Response("<html>OK</html>", 200, mimetype="text/html")
            return answer

        view.__name__ = handler.__name__
        return view

    def _create(self) -> Response:
        if request.mimetype != "application/json":
            raise RefusedError(415, "unsupported_media_type", "Send application/json.")
        raw = request.get_data()
        body = _json_object(raw)
        key = self._idempotency_key(body)
        post = _post_from(body)
        digest = hashlib.sha256(raw).hexdigest()
        with self.state.lock:
            if key is not None and key in self.keys:
                post_id, seen = self.keys[key]
                if seen != digest:
                    raise RefusedError(
                        422,
                        "idempotency_key_reused",
                        "This key came with another post.",
                    )
                return _json({"id": post_id, "url": self._post_url(post_id)}, 200)
            post_id = f"post-{self.state.next_id()}"
            post.update(
                idempotency_key=key,
                url=self._post_url(post_id),
                created_at=datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            )
            self.keep(post_id, post)
            if key is not None:
                self.keys[key] = (post_id, digest)
        return _json({"id": post_id, "url": post["url"]}, 201)

    def _recent(self) -> Response:
        since = _parse_time(request.args.get("since", ""))
        if since is None:
            raise RefusedError(400, "bad_request", "since must be an ISO 8601 time.")
        limit = request.args.get("limit", str(self.page_size))
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE_SIZE:
            raise RefusedError(
                400, "bad_request", f"limit must be 1 to {MAX_PAGE_SIZE}."
            )
        found = [
            p for p in self.live() if datetime.fromisoformat(p["created_at"]) >= since
        ]
        found.sort(key=_order, reverse=True)
        after = request.args.get("after")
        if after is not None:
            place = _cursor_place(after)
            found = [p for p in found if _order(p) < place]
        window = found[: int(limit)]
        items = [
            {
                "id": p["id"],
                "url": p["url"],
                "caption": p["caption"],
                "image_count": len(p["images"]),
                "created_at": p["created_at"],
            }
            for p in window
        ]
        answer = _json(items, 200)
        if len(found) > len(window):
            query = [(k, v) for k, v in request.args.items(multi=True) if k != "after"]
            query.append(("after", _cursor(window[-1])))
            answer.headers["Link"] = f'<{PATH}?{urlencode(query)}>; rel="next"'
        return answer

    def _lookup(self, post_id: str) -> Response:
        with self.state.lock:
            post = self.state.posts.get(post_id)
        if post is None:
            raise RefusedError(404, "not_found", "No such post.")
        return _json({"id": post_id, "url": post["url"]}, 200)

    def _delete(self, post_id: str) -> Response:
        body = _json_object(request.get_data())
        if body.get("event") != "post.deleted" or body.get("id") != post_id:
            raise RefusedError(400, "bad_request", "The body must name this post.")
        if not self.forget(post_id):
            raise RefusedError(404, "not_found", "No such post.")
        return _json({"id": post_id, "deleted": True}, 200)

    def _post_page(self, post_id: str) -> Response:
        with self.state.lock:
            post = self.state.posts.get(post_id)
        if post is None:
            return Response("No such post.", 404, mimetype="text/plain")
        return page("A post on the school website", [dict(post, id=post_id)], _render)

    def _index(self) -> Response:
        return page("School website (webhook sandbox)", self.live(), _render)

    # -- checks -------------------------------------------------------------------

    def _check_signature(self) -> None:
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        now = self.clock()
        body = request.get_data()
        if verify_signature(
            self.secret, timestamp, body, signature, now, self.tolerance
        ):
            return
        stale = timestamp.isdigit() and abs(now - int(timestamp)) > self.tolerance
        if stale:
            raise RefusedError(401, "stale_timestamp", "The timestamp is too old.")
        raise RefusedError(401, "bad_signature", "The signature does not match.")

    def _idempotency_key(self, body: dict[str, Any]) -> str | None:
        header = request.headers.get(IDEMPOTENCY_HEADER)
        key = parse_idempotency_header(header)
        if header is not None and key is None:
            raise RefusedError(400, "bad_request", "The Idempotency-Key is malformed.")
        named = body.get("post_id")
        if named is not None and named != key:
            raise RefusedError(
                400, "bad_request", "post_id and Idempotency-Key differ."
            )
        return key

    def _post_url(self, post_id: str) -> str:
        return f"{self.base_url}/posts/{post_id}"

    def _fault_answer(self, fault: str) -> Response:
        status, code, message = _ERRORS[fault]
        answer = _error(status, code, message)
        if fault == "rate_limited":
            answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer


def _post_from(body: dict[str, Any]) -> dict[str, Any]:
    """The post a ``post.published`` body describes, every field checked."""
    caption, account, images = body.get("caption"), body.get("account_id"), None
    if body.get("event") != "post.published":
        raise RefusedError(400, "bad_request", "event must be post.published.")
    if not isinstance(caption, str) or not isinstance(account, str):
        raise RefusedError(400, "bad_request", "caption and account_id are required.")
    images = body.get("images")
    if not isinstance(images, list) or not images:
        raise RefusedError(400, "bad_request", "images must be a non-empty list.")
    return {
        "account_id": account,
        "caption": caption,
        "images": [_image(n, i) for n, i in enumerate(images, 1)],
    }


def _image(number: int, image: Any) -> dict[str, str]:
    bad = RefusedError(400, "bad_request", f"Image {number} is malformed.")
    if not isinstance(image, dict):
        raise bad
    fields = [image.get(k) for k in ("photo_id", "content_type", "sha256")]
    data = image.get("data_base64")
    if not all(isinstance(f, str) and f for f in fields) or not isinstance(data, str):
        raise bad
    photo_id, content_type, sha = (str(f) for f in fields)
    if content_type not in IMAGE_TYPES or not _SHA256.match(sha):
        raise bad
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    if hashlib.sha256(raw).hexdigest() != sha:
        raise RefusedError(
            400, "bad_request", f"Image {number} does not match its hash."
        )
    return {
        "photo_id": photo_id,
        "content_type": content_type,
        "sha256": sha,
        "data_base64": data,
    }


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RefusedError(400, "bad_request", "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise RefusedError(400, "bad_request", "The body must be a JSON object.")
    return body


def _order(post: dict[str, Any]) -> tuple[str, int]:
    """A post's place in the list, newest first (ties by its number)."""
    return str(post["created_at"]), int(str(post["id"]).removeprefix("post-"))


def _cursor(post: dict[str, Any]) -> str:
    raw = json.dumps(list(_order(post))).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_place(cursor: str) -> tuple[str, int]:
    bad = RefusedError(400, "bad_request", "after is not a cursor this site gave.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, number = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if not isinstance(created, str) or not isinstance(number, int):
        raise bad
    return created, number


def _parse_time(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _render(post: dict[str, Any]) -> str:
    images = "".join(
        f"<img alt='{escape(i['photo_id'], quote=True)}' "
        f"src='data:{i['content_type']};base64,{i['data_base64']}'>"
        for i in post["images"]
        if i["content_type"] in IMAGE_TYPES  # checked on the way in; data is base64
    )
    caption = escape(post["caption"]).replace("\n", "<br>")
    link = escape(post["url"], quote=True)
    return f"<p>{caption}</p>{images}<p><a href='{link}'>{escape(post['id'])}</a></p>"


def _json(value: Any, status: int) -> Response:
    answer = jsonify(value)
    answer.status_code = status
    return answer


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _drop() -> Response:
    """Carry-out-then-hang-up: close the connection without answering."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)
    return Response(status=500)  # never reaches the client
