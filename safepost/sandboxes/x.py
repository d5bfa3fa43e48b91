"""X (Twitter) sandbox: the part of API v2 and of OAuth 2.0 that ``XAdapter`` uses.

Routes (problems answered as X documents them: ``{"title", "detail", "type",
"status"}``, ``x-rate-limit-reset`` on 429):

- ``GET  /i/oauth2/authorize``  approves at once as the signed-in user (``sign_in``;
  the first user added by default) and redirects with ``code`` and ``state``; it keeps
  the PKCE ``code_challenge`` (S256 or plain);
- ``POST /2/oauth2/token``      ``authorization_code`` (the ``code_verifier`` must match
  the challenge; a code works once, for 30 s) and ``refresh_token`` (rotates: the old
  refresh token is refused after one use, ``invalid_request`` as X answers). A public
  client sends ``client_id`` in the body, a confidential one HTTP Basic;
- ``POST /2/media/upload``      multipart ``media``, ``media_category``, ``media_type``;
- ``POST /2/tweets``            ``{"text", "media": {"media_ids": [1-4]}}``; a text
  equal to a live post of the same user is refused as duplicate content;
- ``DELETE /2/tweets/<id>``, ``GET /2/tweets/<id>`` (a gone post: 200 with a
  ``resource-not-found`` problem), ``GET /2/users/<id>/tweets`` (``start_time``,
  ``max_results`` 5-100, default 10, ``tweet.fields``; newest first, reaching only
  the 3,200 most recent posts; ``meta.next_token`` while more follow, a base-36
  cursor given back as ``pagination_token``: https://docs.x.com/x-api/users/get-posts);
- ``GET /i/status/<id>``        the post's public page; ``GET /`` every post.

Every API call needs ``Authorization: Bearer`` with an unexpired token carrying the
scopes X requires. Texts come back as X returns them: HTML-escaped, links as t.co,
and a t.co link to the photos at the end.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request
from twitter_text import extract_urls_with_indices, parse_tweet

from safepost.sandboxes.common import Sandbox, page

DEMO_CLIENT_ID = "safepost-sandbox-x-client"
SCOPES = frozenset(
    {"tweet.read", "tweet.write", "users.read", "media.write", "offline.access"}
)
CODE_SECONDS = 30.0  # X: an authorization code is valid for 30 seconds
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")
TWEET_FIELDS = frozenset(
    {"attachments", "author_id", "created_at", "edit_history_tweet_ids", "entities"}
)
_PROBLEMS = "https://api.twitter.com/2/problems"


class ProblemError(Exception):
    """An X problem answer (RFC 7807, as X words it)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        kind: str = "about:blank",
        errors: list[dict[str, str]] | None = None,
    ):
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind
        self.errors = errors or []


class OAuthRefusedError(Exception):
    """An OAuth error answer of the token endpoint."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass
class Token:
    user_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Grant:
    user_id: str
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Upload:
    user_id: str
    data: bytes
    content_type: str
    key: str = ""


class XSandbox(Sandbox):
    name = "x"
    timeline_reach = 3200  # X: the user Post timeline reaches the newest 3,200 posts

    def __init__(
        self,
        latency: tuple[float, float] = (0.0, 0.0),
        *,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str | None = None,
        token_lifetime: float = 7200.0,
        rate_limit_reset_seconds: int = 900,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(latency)
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime = token_lifetime
        self.rate_limit_reset_seconds = rate_limit_reset_seconds
        self.clock = clock
        self.users: dict[str, str] = {}
        self.signed_in: str | None = None
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.codes: dict[str, Grant] = {}
        self.uploads: dict[str, Upload] = {}
        self.last_reset_header = 0
        self._install()

    # -- set-up (tests and make run) ------------------------------------------------

    def add_user(self, user_id: str, username: str) -> None:
        with self.state.lock:
            self.users[user_id] = username
            self.signed_in = self.signed_in or user_id

    def sign_in(self, user_id: str) -> None:
        """Whom ``/i/oauth2/authorize`` approves as."""
        self.signed_in = user_id

    def issue_token(
        self,
        user_id: str,
        scopes: frozenset[str] = SCOPES,
        lifetime: float | None = None,
    ) -> tuple[str, str]:
        """An (access token, refresh token) pair, as if the user had connected."""
        with self.state.lock:
            return self._issue(user_id, scopes, lifetime)

    def _issue(
        self, user_id: str, scopes: frozenset[str], lifetime: float | None = None
    ) -> tuple[str, str]:
        life = self.token_lifetime if lifetime is None else lifetime
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.tokens[access] = Token(user_id, scopes, self.clock() + life)
        self.refresh_tokens[refresh] = Token(user_id, scopes, float("inf"))
        return access, refresh

    # -- routes -------------------------------------------------------------------

    def _install(self) -> None:
        add = self.app.add_url_rule
        add("/i/oauth2/authorize", "authorize", self._authorize)
        add(
            "/2/oauth2/token",
            "token",
            self._guarded(self._token, oauth=True),
            methods=["POST"],
        )
        add("/2/media/upload", "upload", self._guarded(self._upload), methods=["POST"])
        add("/2/tweets", "create", self._guarded(self._create), methods=["POST"])
        add("/2/tweets/<post_id>", "lookup", self._guarded(self._lookup))
        add(
            "/2/tweets/<post_id>",
            "delete",
            self._guarded(self._delete),
            methods=["DELETE"],
        )
        add("/2/users/<user_id>/tweets", "timeline", self._guarded(self._timeline))
        add("/i/status/<post_id>", "status_page", self._status_page)
        add("/_sandbox/media/<media_id>", "media_bytes", self._media_bytes)
        add("/", "index", self._index)

    def _guarded(
        self, handler: Callable[..., Response], *, oauth: bool = False
    ) -> Callable[..., Response]:
        """Faults first, then the route; ``drop_after`` and ``malformed`` after the
        route has done its work, ``timeout`` holds the answer then carries on."""

        def view(**kwargs: Any) -> Response:
            fault = self.fault()
            if fault in ("expired_token", "rate_limited", "server_error", "refuse"):
                return self._fault_answer(fault or "", oauth)
            if fault == "timeout":
                self.hold()
            try:
                answer = handler(**kwargs)
            except ProblemError as exc:
                answer = _problem(exc)
            except OAuthRefusedError as exc:
                answer = _json(
                    {"error": exc.error, "error_description": exc.description},
                    exc.status,
                )
            if fault == "drop_after":
                return _drop()
            if fault == "malformed":
                return Response("<html>Over capacity</html>", 200, mimetype="text/html")
            return answer

        view.__name__ = handler.__name__
        return view

    def _fault_answer(self, fault: str, oauth: bool) -> Response:
        if fault == "rate_limited":
            answer = _problem(
                ProblemError(429, "Too Many Requests", "Too Many Requests")
            )
            reset = int(self.clock()) + self.rate_limit_reset_seconds
            self.last_reset_header = reset
            answer.headers.update(
                {
                    "x-rate-limit-limit": "100",
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(reset),
                }
            )
            return answer
        if fault == "server_error":
            return _problem(
                ProblemError(503, "Service Unavailable", "Service Unavailable")
            )
        if oauth:
            return _json(
                {
                    "error": "invalid_request",
                    "error_description": "Value passed for the token was invalid.",
                },
                400,
            )
        if fault == "expired_token":
            return _problem(ProblemError(401, "Unauthorized", "Unauthorized"))
        return _problem(_duplicate())

    # -- OAuth 2.0 -------------------------------------------------------------------

    def _authorize(self) -> Response:
        args = request.args
        scopes = frozenset(args.get("scope", "").split())
        reason = self._authorize_problem(scopes)
        if reason:
            return Response(f"Something went wrong: {escape(reason)}", 400)
        code = secrets.token_urlsafe(24)
        with self.state.lock:
            self.codes[code] = Grant(
                user_id=self.signed_in or "",
                client_id=args["client_id"],
                redirect_uri=args["redirect_uri"],
                challenge=args["code_challenge"],
                method=args["code_challenge_method"],
                scopes=scopes,
                expires_at=self.clock() + CODE_SECONDS,
            )
        query = urlencode({"state": args["state"], "code": code})
        return Response(
            status=302, headers={"Location": f"{args['redirect_uri']}?{query}"}
        )

    def _authorize_problem(self, scopes: frozenset[str]) -> str:
        """Why the authorisation request is refused; empty when it is fine."""
        args = request.args
        needed = (
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        )
        missing = [name for name in needed if not args.get(name)]
        if missing:
            return f"missing {', '.join(missing)}"
        if args["response_type"] != "code":
            return "response_type must be code"
        if args["client_id"] != self.client_id:
            return "unknown client_id"
        if not scopes <= SCOPES:
            return "unknown scope"
        if args["code_challenge_method"] not in ("S256", "plain"):
            return "code_challenge_method must be S256 or plain"
        if self.signed_in is None:
            return "nobody is signed in"
        return ""

    def _token(self) -> Response:
        form = request.form
        client_id = self._client_id()
        grant_type = form.get("grant_type")
        with self.state.lock:
            if grant_type == "authorization_code":
                token = self._code_grant(client_id)
            elif grant_type == "refresh_token":
                old = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
                if old is None:
                    raise OAuthRefusedError(
                        400,
                        "invalid_request",
                        "Value passed for the token was invalid.",
                    )
                token = old
            else:
                raise OAuthRefusedError(400, "invalid_request", "Missing grant_type.")
            access, refresh = self._issue(token.user_id, token.scopes)
            if "offline.access" not in token.scopes:
                del self.refresh_tokens[refresh]  # X: no refresh without it
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": int(self.token_lifetime),
            "access_token": access,
            "scope": " ".join(sorted(token.scopes)),
        }
        if "offline.access" in token.scopes:
            body["refresh_token"] = refresh
        return _json(body, 200)

    def _client_id(self) -> str:
        header = request.headers.get("Authorization", "")
        if self.client_secret is not None:
            want = base64.b64encode(
                f"{self.client_id}:{self.client_secret}".encode()
            ).decode()
            if header != f"Basic {want}":
                raise OAuthRefusedError(
                    401, "unauthorized_client", "Missing valid authorization header"
                )
            return self.client_id
        if request.form.get("client_id") != self.client_id:
            raise OAuthRefusedError(
                400, "invalid_request", "Missing required parameter."
            )
        return self.client_id

    def _code_grant(self, client_id: str) -> Token:
        form = request.form
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if (
            grant is None
            or grant.expires_at < self.clock()
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
        ):
            raise OAuthRefusedError(
                400,
                "invalid_request",
                "Value passed for the authorization code was invalid.",
            )
        if not _verifier_matches(grant, form.get("code_verifier", "")):
            raise OAuthRefusedError(
                400,
                "invalid_request",
                "Value passed for the code verifier was invalid.",
            )
        return Token(grant.user_id, grant.scopes, float("inf"))

    # -- API ------------------------------------------------------------------------

    def _user(self, *scopes: str) -> str:
        """The user of the request's bearer token, which must hold ``scopes``."""
        header = request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        with self.state.lock:
            token = self.tokens.get(value) if kind == "Bearer" else None
        if token is None or token.expires_at <= self.clock():
            raise ProblemError(401, "Unauthorized", "Unauthorized")
        if not set(scopes) <= token.scopes:
            raise ProblemError(
                403,
                "Forbidden",
                "You are not permitted to perform this action.",
                f"{_PROBLEMS}/client-forbidden",
            )
        return token.user_id

    def _upload(self) -> Response:
        user = self._user("media.write")
        if request.mimetype != "multipart/form-data":
            raise _invalid("The request must be multipart/form-data.")
        part = request.files.get("media")
        category = request.form.get("media_category")
        declared = request.form.get("media_type")
        if part is None or category not in ("tweet_image", "dm_image", "subtitles"):
            raise _invalid("media and a valid media_category are required.")
        data = part.read()
        sniffed = _sniff(data)
        if sniffed is None or (declared is not None and declared != sniffed):
            raise _invalid("media type unrecognized.")
        if len(data) > MAX_UPLOAD_BYTES:
            raise _invalid("File size exceeds 5242880 bytes.")
        media_id = self._next_id()
        with self.state.lock:
            self.uploads[media_id] = Upload(user, data, sniffed, f"3_{media_id}")
        body = {
            "id": media_id,
            "media_key": f"3_{media_id}",
            "size": len(data),
            "expires_after_secs": 86400,
        }
        return _json({"data": body}, 200)

    def _create(self) -> Response:
        user = self._user("tweet.read", "tweet.write", "users.read")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("text", ""), str):
            raise _invalid("The body must be a JSON object with a text.")
        text = str(body.get("text", ""))
        ids = _dict(body.get("media")).get("media_ids", [])
        if not isinstance(ids, list) or len(ids) > 4:
            raise _invalid("media.media_ids must hold 1 to 4 ids.")
        if text and not parse_tweet(text).valid:
            raise _invalid("text is longer than 280 weighted characters.")
        if not text and not ids:
            raise _invalid("A post needs text or media.")
        with self.state.lock:
            uploads = [self.uploads.get(str(i)) for i in ids]
            if any(u is None or u.user_id != user for u in uploads):
                raise _invalid("Your media IDs are invalid.")
            if any(p["author_id"] == user and p["text"] == text for p in self.live()):
                raise _duplicate()
            post_id = self._next_id()
            self.keep(post_id, self._post(post_id, user, text, [str(i) for i in ids]))
        shown = self._rendered(post_id)
        return _json(
            {
                "data": {
                    "id": post_id,
                    "text": shown["text"],
                    "edit_history_tweet_ids": [post_id],
                }
            },
            201,
        )

    def _lookup(self, post_id: str) -> Response:
        self._user("tweet.read", "users.read")
        fields = _fields()
        with self.state.lock:
            if post_id not in self.state.posts:
                return _json({"errors": [_not_found(post_id, "id")]}, 200)
            return _json({"data": self._rendered(post_id, fields)}, 200)

    def _delete(self, post_id: str) -> Response:
        user = self._user("tweet.read", "tweet.write", "users.read")
        with self.state.lock:
            post = self.state.posts.get(post_id)
            if post is None:
                raise ProblemError(
                    404,
                    "Not Found Error",
                    f"Could not find tweet with id: [{post_id}].",
                    f"{_PROBLEMS}/resource-not-found",
                )
            if post["author_id"] != user:
                raise ProblemError(
                    403, "Forbidden", "You are not allowed to delete this Tweet."
                )
            self.forget(post_id)
        return _json({"data": {"deleted": True}}, 200)

    def _timeline(self, user_id: str) -> Response:
        self._user("tweet.read", "users.read")
        fields = _fields()
        since = _time_arg(request.args.get("start_time"))
        count = request.args.get("max_results", "10")
        if not count.isdigit() or not 5 <= int(count) <= 100:
            raise _invalid("max_results must be between 5 and 100.")
        token = request.args.get("pagination_token")
        older_than = _token_id(token) if token is not None else None
        with self.state.lock:
            if user_id not in self.users:
                return _json({"errors": [_not_found(user_id, "id", "user")]}, 200)
            mine = [k for k, p in self.state.posts.items() if p["author_id"] == user_id]
            mine.sort(key=int, reverse=True)
            ids = [  # only the most recent posts are reachable at all
                k
                for k in mine[: self.timeline_reach]
                if (since is None or self.state.posts[k]["created"] >= since)
                and (older_than is None or int(k) < older_than)
            ]
            window = ids[: int(count)]
            data = [self._rendered(i, fields) for i in window]
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta.update(newest_id=window[0], oldest_id=window[-1])
        if len(ids) > len(window):
            meta["next_token"] = _base36(int(window[-1]))
        return _json({"data": data, "meta": meta} if data else {"meta": meta}, 200)

    # -- posts ----------------------------------------------------------------------

    def _next_id(self) -> str:
        return str(1_860_000_000_000_000_000 + self.state.next_id())

    def _post(
        self, post_id: str, user: str, text: str, ids: list[str]
    ) -> dict[str, Any]:
        return {
            "author_id": user,
            "username": self.users.get(user, user),
            "text": text,
            "media_ids": ids,
            "media_keys": [self.uploads[i].key for i in ids],
            "created": self.clock(),
            "photo_link": f"https://t.co/{secrets.token_urlsafe(7)}" if ids else "",
            "links": {
                u["url"]: f"https://t.co/{secrets.token_urlsafe(7)}"
                for u in extract_urls_with_indices(text)
            },
        }

    def _rendered(
        self, post_id: str, fields: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The post as X's API shows it: escaped, t.co links, the photo link."""
        post = self.state.posts[post_id]
        text, urls = escape(post["text"], quote=False), []
        for original, short in post["links"].items():
            text = text.replace(escape(original, quote=False), short, 1)
            urls.append(
                {"url": short, "expanded_url": original, "display_url": original}
            )
        if post["photo_link"]:
            text = f"{text} {post['photo_link']}".strip()
            urls.append(
                {
                    "url": post["photo_link"],
                    "expanded_url": f"{self.base_url}/i/status/{post_id}/photo/1",
                    "display_url": f"pic.x.com/{post_id}",
                    "media_key": post["media_keys"][0],
                }
            )
        for entity in urls:
            start = text.find(entity["url"])
            entity.update(start=start, end=start + len(entity["url"]))
        shown: dict[str, Any] = {
            "id": post_id,
            "text": text,
            "edit_history_tweet_ids": [post_id],
        }
        if "created_at" in fields:
            at = datetime.fromtimestamp(post["created"], UTC)
            millis = at.microsecond // 1000
            shown["created_at"] = f"{at:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"
        if "author_id" in fields:
            shown["author_id"] = post["author_id"]
        if "attachments" in fields and post["media_keys"]:
            shown["attachments"] = {"media_keys": list(post["media_keys"])}
        if "entities" in fields and urls:
            shown["entities"] = {"urls": urls}
        return shown

    # -- pages ----------------------------------------------------------------------

    def _status_page(self, post_id: str) -> Response:
        with self.state.lock:
            post = self.state.posts.get(post_id)
        if post is None:
            return Response("This post is unavailable.", 404, mimetype="text/plain")
        return page("A post on X (sandbox)", [dict(post, id=post_id)], _render)

    def _media_bytes(self, media_id: str) -> Response:
        with self.state.lock:
            upload = self.uploads.get(media_id)
        if upload is None:
            return Response("Not found", 404, mimetype="text/plain")
        return Response(upload.data, 200, mimetype=upload.content_type)

    def _index(self) -> Response:
        return page("X (sandbox)", self.live(), _render)


# -- helpers --------------------------------------------------------------------------


def _render(post: dict[str, Any]) -> str:
    images = "".join(
        f'<img src="/_sandbox/media/{escape(i)}" alt="">' for i in post["media_ids"]
    )
    return (
        f"<p><strong>@{escape(post['username'])}</strong> · "
        f'<a href="/i/status/{escape(post["id"])}">{escape(post["id"])}</a></p>'
        f"<p>{escape(post['text'])}</p>{images}"
    )


def _verifier_matches(grant: Grant, verifier: str) -> bool:
    if not verifier:
        return False
    if grant.method == "plain":
        return secrets.compare_digest(verifier, grant.challenge)
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return secrets.compare_digest(challenge, grant.challenge)


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _fields() -> frozenset[str]:
    fields = frozenset(f for f in request.args.get("tweet.fields", "").split(",") if f)
    if not fields <= TWEET_FIELDS:
        raise _invalid(
            f"Unknown tweet.fields: {', '.join(sorted(fields - TWEET_FIELDS))}"
        )
    return fields


def _base36(number: int) -> str:
    """A pagination token: the last post shown, in base 36 as X's tokens are."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def _token_id(token: str) -> int:
    """The post a pagination token points after; a token X never gave is refused."""
    if not token or not all(c in "0123456789abcdefghijklmnopqrstuvwxyz" for c in token):
        raise _invalid("pagination_token is invalid.")
    return int(token, 36)


def _time_arg(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("start_time must be an ISO 8601 time.") from None
    if at.tzinfo is None:
        raise _invalid("start_time must be in UTC (Z).")
    return at.timestamp()


def _invalid(message: str) -> ProblemError:
    return ProblemError(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        f"{_PROBLEMS}/invalid-request",
        [{"message": message}],
    )


def _duplicate() -> ProblemError:
    return ProblemError(
        403,
        "Forbidden",
        "You are not allowed to create a Tweet with duplicate content.",
    )


def _not_found(value: str, parameter: str, kind: str = "tweet") -> dict[str, str]:
    return {
        "value": value,
        "detail": f"Could not find {kind} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": kind,
        "parameter": parameter,
        "resource_id": value,
        "type": f"{_PROBLEMS}/resource-not-found",
    }


def _problem(exc: ProblemError) -> Response:
    body: dict[str, Any] = {
        "title": exc.title,
        "detail": exc.detail,
        "type": exc.kind,
        "status": exc.status,
    }
    if exc.errors:
        body["errors"] = exc.errors
    return _json(body, exc.status)


def _json(body: Any, status: int) -> Response:
    answer = jsonify(body)
    answer.status_code = status
    return answer


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _drop() -> Response:
    """Carry-out-then-hang-up: close the connection without answering."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)
    return Response(status=500)  # never reaches the client
