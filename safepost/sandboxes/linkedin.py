"""LinkedIn sandbox: the part of the versioned REST API and of OAuth that
``LinkedInAdapter`` uses, posting as registered organisations.

Routes (errors as LinkedIn words them: ``{"status", "serviceErrorCode"?, "code"?,
"message"}``; OAuth errors ``{"error", "error_description"}``):

- ``GET  /oauth/v2/authorization``  approves at once and redirects with ``code`` and
  ``state``;
- ``POST /oauth/v2/accessToken``    ``authorization_code`` and ``refresh_token`` grants,
  client id and secret in the body; refresh tokens (365 days, not rotated) only when
  the sandbox grants them (``refresh_tokens=False`` mimics an app without);
- ``POST /rest/images?action=initializeUpload`` -> an upload URL on this sandbox,
  ``PUT /dms-uploads/<token>`` takes the bytes (bearer required);
- ``POST /rest/posts`` (201, URN in ``x-restli-id``), ``GET``/``DELETE
  /rest/posts/<urn>``, ``GET /rest/posts?q=author&author=<org>`` (the finder: newest
  first by ``sortBy`` ``LAST_MODIFIED`` (default) or ``CREATED``, paged by ``start``
  and ``count`` (default 10, at most 100) with ``paging.start``/``count``/``total``;
  a page shorter than ``count`` is the end, as LinkedIn's pagination guide says:
  https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/pagination);
- ``GET /feed/update/<urn>/`` a post's page; ``GET /`` every post with its images.

Every ``/rest/`` call needs ``LinkedIn-Version`` (a missing one is 400
``VERSION_MISSING``, one outside ``versions`` 426 ``NONEXISTENT_VERSION``),
``X-Restli-Protocol-Version: 2.0.0`` and an unexpired bearer token with the scope.
A commentary is shown as LinkedIn's little-text format reads it: cut at the first
unescaped reserved character.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response, jsonify, request

from safepost.sandboxes.common import Sandbox, page

DEMO_CLIENT_ID = "safepost-sandbox-linkedin-client"
DEMO_CLIENT_SECRET = "safepost-sandbox-linkedin-secret-not-for-production"
LATEST_VERSION = "202611"
ACCESS_SECONDS = 60 * 86400.0
REFRESH_SECONDS = 365 * 86400.0
CODE_SECONDS = 30 * 60.0  # LinkedIn: an authorization code lasts 30 minutes
SCOPES = frozenset({"w_organization_social", "r_organization_social"})
RESERVED = "\\|{}@[]()<>#*_~"
_ORG = re.compile(r"^urn:li:organization:([0-9]+)$")
_VERSION = re.compile(r"^[0-9]{6}(\.[0-9]{2})?$")
_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "expired_token": (
        401,
        {"serviceErrorCode": 65600, "message": "Invalid access token"},
    ),
    "rate_limited": (
        429,
        {
            "message": "Resource level throttle APPLICATION DAY limit "
            "for calls to this resource is reached."
        },
    ),
    "server_error": (500, {"message": "Internal Server Error"}),
    "refuse": (422, {"message": "ERROR :: /commentary :: The content was refused."}),
}


class RefusedError(Exception):
    """A LinkedIn error answer (``body`` gets ``status`` added)."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(str(body.get("message", "")))
        self.status, self.body = status, body


@dataclass
class Token:
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Image:
    owner: str
    data: bytes = b""
    content_type: str = ""


def monthly_versions(latest: str = LATEST_VERSION, months: int = 12) -> set[str]:
    """The ``months`` monthly versions up to ``latest`` (YYYYMM)."""
    year, month = int(latest[:4]), int(latest[4:])
    out = set()
    for _ in range(months):
        out.add(f"{year:04d}{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


class LinkedInSandbox(Sandbox):
    name = "linkedin"

    def __init__(
        self,
        latency: tuple[float, float] = (0.0, 0.0),
        *,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        refresh_tokens: bool = True,
        token_lifetime: float = ACCESS_SECONDS,
        versions: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(latency)
        self.client_id, self.client_secret = client_id, client_secret
        self.grants_refresh = refresh_tokens
        self.token_lifetime = token_lifetime
        self.versions = set(versions) if versions is not None else monthly_versions()
        self.clock = clock
        self.organizations: dict[str, str] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.codes: dict[str, tuple[str, frozenset[str], float]] = {}
        self.images: dict[str, Image] = {}
        self.uploads: dict[str, str] = {}  # upload token -> image URN
        self.deleted: set[str] = set()
        self._install()

    # -- set-up -----------------------------------------------------------------------

    def add_organization(self, org_id: str, name: str) -> str:
        """Registers a page the signed-in member administers; returns its URN."""
        with self.state.lock:
            self.organizations[f"urn:li:organization:{org_id}"] = name
        return f"urn:li:organization:{org_id}"

    def issue_token(
        self, scopes: frozenset[str] = SCOPES, lifetime: float | None = None
    ) -> tuple[str, str | None]:
        """An (access token, refresh token or None), as if an admin had connected."""
        with self.state.lock:
            return self._issue(scopes, lifetime)

    def _issue(
        self, scopes: frozenset[str], lifetime: float | None = None
    ) -> tuple[str, str | None]:
        life = self.token_lifetime if lifetime is None else lifetime
        access = secrets.token_urlsafe(40)
        self.tokens[access] = Token(scopes, self.clock() + life)
        if not self.grants_refresh:
            return access, None
        refresh = secrets.token_urlsafe(40)
        self.refresh_tokens[refresh] = Token(scopes, self.clock() + REFRESH_SECONDS)
        return access, refresh

    # -- routes -------------------------------------------------------------------

    def _install(self) -> None:
        add = self.app.add_url_rule
        add("/oauth/v2/authorization", "authorize", self._authorize)
        add(
            "/oauth/v2/accessToken",
            "token",
            self._guarded(self._token, versioned=False, oauth=True),
            methods=["POST"],
        )
        add("/rest/images", "images", self._guarded(self._initialize), methods=["POST"])
        add(
            "/dms-uploads/<token>",
            "put_image",
            self._guarded(self._put, versioned=False),
            methods=["PUT"],
        )
        add("/rest/posts", "create", self._guarded(self._create), methods=["POST"])
        add("/rest/posts", "finder", self._guarded(self._finder), methods=["GET"])
        add("/rest/posts/<path:urn>", "lookup", self._guarded(self._lookup))
        add(
            "/rest/posts/<path:urn>",
            "delete",
            self._guarded(self._delete),
            methods=["DELETE"],
        )
        add("/feed/update/<path:urn>", "post_page", self._post_page)
        add("/_sandbox/media/<path:urn>", "media_bytes", self._media_bytes)
        add("/", "index", self._index)

    def _guarded(
        self,
        handler: Callable[..., Response],
        *,
        versioned: bool = True,
        oauth: bool = False,
    ) -> Callable[..., Response]:
        """Faults first, then the version headers (``/rest/``), then the route."""

        def view(**kwargs: Any) -> Response:
            fault = self.fault()
            if fault in _ERRORS:
                return self._fault_answer(fault or "", oauth)
            if fault == "timeout":
                self.hold()
            try:
                if versioned:
                    _check_versions(self.versions)
                answer = handler(**kwargs)
            except RefusedError as exc:
                answer = _json(dict(exc.body, status=exc.status), exc.status)
            if fault == "drop_after":
                return _drop()
            if fault == "malformed":
                return Response("<html>Please wait</html>", 200, mimetype="text/html")
            return answer

        view.__name__ = handler.__name__
        return view

    def _fault_answer(self, fault: str, oauth: bool) -> Response:
        status, body = _ERRORS[fault]
        if oauth and fault in ("expired_token", "refuse"):
            status, body = (
                400,
                {
                    "error": "invalid_request",
                    "error_description": "The provided authorization "
                    "grant or refresh token is invalid, expired or revoked",
                },
            )
            return _json(body, status)
        return _json(dict(body, status=status), status)

    # -- OAuth ------------------------------------------------------------------------

    def _authorize(self) -> Response:
        args = request.args
        scopes = frozenset(re.split(r"[ ,]+", args.get("scope", "").strip()))
        missing = [
            k
            for k in ("response_type", "client_id", "redirect_uri", "state", "scope")
            if not args.get(k)
        ]
        if missing or args["response_type"] != "code":
            return Response(f"Bad request: {escape(', '.join(missing))}", 400)
        if args["client_id"] != self.client_id or not scopes <= SCOPES:
            return Response("Bad request: unknown client or scope", 400)
        code = secrets.token_urlsafe(30)
        with self.state.lock:
            self.codes[code] = (
                args["redirect_uri"],
                scopes,
                self.clock() + CODE_SECONDS,
            )
        query = urlencode({"code": code, "state": args["state"]})
        return Response(
            status=302, headers={"Location": f"{args['redirect_uri']}?{query}"}
        )

    def _token(self) -> Response:
        form = request.form
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        with self.state.lock:
            if form.get("grant_type") == "authorization_code":
                redirect_uri, scopes, until = self.codes.pop(
                    form.get("code", ""), ("", frozenset(), 0.0)
                )
                if until < self.clock() or redirect_uri != form.get("redirect_uri"):
                    return _oauth_error(
                        400,
                        "invalid_request",
                        "Unable to retrieve "
                        "access token: appid/redirect uri/code "
                        "verifier does not match authorization code. "
                        "Or authorization code expired.",
                    )
                access, refresh = self._issue(scopes)
                refresh_left = REFRESH_SECONDS
            elif form.get("grant_type") == "refresh_token":
                old_token = form.get("refresh_token", "")
                old = self.refresh_tokens.get(old_token)
                if old is None or old.expires_at < self.clock():
                    return _oauth_error(
                        400,
                        "invalid_request",
                        "The provided "
                        "authorization grant or refresh token is "
                        "invalid, expired or revoked",
                    )
                access, refresh = self._issue(old.scopes)
                del self.refresh_tokens[refresh or ""]
                refresh, refresh_left = old_token, old.expires_at - self.clock()
                scopes = old.scopes
            else:
                return _oauth_error(400, "unsupported_grant_type", "Unsupported grant")
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(self.token_lifetime),
            "scope": ",".join(sorted(scopes)),
        }
        if refresh is not None:
            body.update(
                refresh_token=refresh, refresh_token_expires_in=int(refresh_left)
            )
        return _json(body, 200)

    # -- REST ---------------------------------------------------------------------

    def _member(self, scope: str) -> None:
        kind, _, value = request.headers.get("Authorization", "").partition(" ")
        with self.state.lock:
            token = self.tokens.get(value) if kind == "Bearer" else None
        if token is None or token.expires_at <= self.clock():
            raise RefusedError(401, dict(_ERRORS["expired_token"][1]))
        if scope not in token.scopes:
            raise RefusedError(
                403,
                {
                    "serviceErrorCode": 100,
                    "code": "ACCESS_DENIED",
                    "message": f"Not enough permissions ({scope}).",
                },
            )

    def _organisation(self, urn: Any) -> str:
        if not isinstance(urn, str) or not _ORG.match(urn):
            raise _unprocessable("/author", "must be an organization URN")
        if urn not in self.organizations:
            raise RefusedError(
                403,
                {
                    "serviceErrorCode": 100,
                    "code": "ACCESS_DENIED",
                    "message": f"Not enough permissions to act as {urn}.",
                },
            )
        return urn

    def _initialize(self) -> Response:
        self._member("w_organization_social")
        if request.args.get("action") != "initializeUpload":
            raise RefusedError(400, {"message": "Unknown action"})
        body = request.get_json(silent=True)
        init = body.get("initializeUploadRequest") if isinstance(body, dict) else None
        owner = self._organisation(
            init.get("owner") if isinstance(init, dict) else None
        )
        token = secrets.token_urlsafe(18)
        urn = f"urn:li:image:D4E10AQ{secrets.token_hex(8)}"
        with self.state.lock:
            self.images[urn] = Image(owner)
            self.uploads[token] = urn
        expires = int((self.clock() + 86400) * 1000)
        value = {
            "uploadUrlExpiresAt": expires,
            "image": urn,
            "uploadUrl": f"{self.base_url}/dms-uploads/{token}",
        }
        return _json({"value": value}, 200)

    def _put(self, token: str) -> Response:
        self._member("w_organization_social")
        data = request.get_data()
        kind = _sniff(data)
        with self.state.lock:
            urn = self.uploads.get(token)
            if urn is None:
                raise RefusedError(404, {"message": "Unknown upload"})
            if kind is None:
                raise RefusedError(
                    400, {"message": "The file is not a JPG, PNG or GIF"}
                )
            self.images[urn].data, self.images[urn].content_type = data, kind
            del self.uploads[token]
        return Response(status=201)

    def _create(self) -> Response:
        self._member("w_organization_social")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise RefusedError(400, {"message": "The body must be a JSON object."})
        with self.state.lock:
            post, images = self._checked_post(body)
            for other, kept in self.state.posts.items():
                same = (kept["post"]["author"], kept["post"]["commentary"])
                if same == (post["author"], post["commentary"]):
                    raise _unprocessable("", f"Content is a duplicate of {other}")
            urn = f"urn:li:share:{7_300_000_000_000_000_000 + self.state.next_id()}"
            now = int(self.clock() * 1000)
            post.update(id=urn, createdAt=now, publishedAt=now, lastModifiedAt=now)
            text = _shown(post["commentary"])
            self.keep(
                urn,
                {
                    "post": post,
                    "images": images,
                    "text": text,
                    "author_name": self.organizations[post["author"]],
                },
            )
        return Response(status=201, headers={"x-restli-id": urn})

    def _checked_post(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        author = self._organisation(body.get("author"))
        commentary = body.get("commentary", "")
        if not isinstance(commentary, str) or len(_shown(commentary)) > 3000:
            raise _unprocessable(
                "/commentary", "must be text of at most 3000 characters"
            )
        distribution = body.get("distribution")
        feed = (
            distribution.get("feedDistribution")
            if isinstance(distribution, dict)
            else None
        )
        if body.get("visibility") not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN"):
            raise _unprocessable("/visibility", "is required")
        if feed not in ("MAIN_FEED", "NONE"):
            raise _unprocessable("/distribution/feedDistribution", "is required")
        if body.get("lifecycleState") not in ("PUBLISHED", "DRAFT"):
            raise _unprocessable("/lifecycleState", "is required")
        images = self._content_images(body.get("content"), author)
        keep = (
            "author",
            "commentary",
            "visibility",
            "distribution",
            "content",
            "lifecycleState",
            "isReshareDisabledByAuthor",
        )
        return {k: body[k] for k in keep if k in body}, images

    def _content_images(self, content: Any, author: str) -> list[str]:
        if content is None:
            return []
        media = content.get("media") if isinstance(content, dict) else None
        multi = content.get("multiImage") if isinstance(content, dict) else None
        if (media is None) == (multi is None):
            raise _unprocessable(
                "/content", "must hold exactly one of media, multiImage"
            )
        if media is not None:
            ids = [media.get("id") if isinstance(media, dict) else None]
        else:
            listed = multi.get("images") if isinstance(multi, dict) else None
            if not isinstance(listed, list) or not 2 <= len(listed) <= 20:
                raise _unprocessable("/content/multiImage/images", "must hold 2 to 20")
            ids = [i.get("id") if isinstance(i, dict) else None for i in listed]
        for urn in ids:
            image = self.images.get(urn) if isinstance(urn, str) else None
            if image is None or image.owner != author or not image.data:
                raise _unprocessable("/content", f"media {urn} is not available")
        return [str(urn) for urn in ids]

    def _lookup(self, urn: str) -> Response:
        self._member("r_organization_social")
        with self.state.lock:
            kept = self.state.posts.get(urn)
        if kept is None:
            raise RefusedError(
                404, {"code": "NOT_FOUND", "message": f"{urn} not found"}
            )
        return _json(kept["post"], 200)

    def _delete(self, urn: str) -> Response:
        self._member("w_organization_social")
        with self.state.lock:
            if urn in self.deleted:
                return Response(status=204)  # deletes are idempotent
            if not self.forget(urn):
                raise RefusedError(
                    404, {"code": "NOT_FOUND", "message": f"{urn} not found"}
                )
            self.deleted.add(urn)
        return Response(status=204)

    def _finder(self) -> Response:
        self._member("r_organization_social")
        args = request.args
        if args.get("q") != "author":
            raise RefusedError(400, {"message": "The finder needs q=author"})
        author = self._organisation(args.get("author"))
        start, count = args.get("start", "0"), args.get("count", "10")
        if not start.isdigit() or not count.isdigit() or not 1 <= int(count) <= 100:
            raise RefusedError(400, {"message": "start and count (1-100) are numbers"})
        sort = args.get("sortBy", "LAST_MODIFIED")
        if sort not in ("CREATED", "LAST_MODIFIED"):
            raise RefusedError(400, {"message": "sortBy is CREATED or LAST_MODIFIED"})
        key = "lastModifiedAt" if sort == "LAST_MODIFIED" else "createdAt"
        with self.state.lock:
            mine = [
                p["post"]
                for p in self.state.posts.values()
                if p["post"]["author"] == author
            ]
        mine.sort(key=lambda p: (p[key], p["id"]), reverse=True)
        window = mine[int(start) : int(start) + int(count)]
        paging = {
            "start": int(start),
            "count": int(count),
            "links": [],
            "total": len(mine),
        }
        return _json({"paging": paging, "elements": window}, 200)

    # -- pages ----------------------------------------------------------------------

    def _post_page(self, urn: str) -> Response:
        urn = urn.rstrip("/")
        with self.state.lock:
            kept = self.state.posts.get(urn)
        if kept is None:
            return Response(
                "This post cannot be displayed.", 404, mimetype="text/plain"
            )
        return page("A post on LinkedIn (sandbox)", [dict(kept, id=urn)], _render)

    def _media_bytes(self, urn: str) -> Response:
        with self.state.lock:
            image = self.images.get(urn)
        if image is None or not image.data:
            return Response("Not found", 404, mimetype="text/plain")
        return Response(image.data, 200, mimetype=image.content_type)

    def _index(self) -> Response:
        return page("LinkedIn (sandbox)", self.live(), _render)


# -- helpers --------------------------------------------------------------------------


def _check_versions(versions: set[str]) -> None:
    version = request.headers.get("LinkedIn-Version")
    if not version:
        raise RefusedError(
            400,
            {
                "code": "VERSION_MISSING",
                "message": "A version must "
                "be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
            },
        )
    if not _VERSION.match(version) or version[:6] not in versions:
        raise RefusedError(
            426,
            {
                "code": "NONEXISTENT_VERSION",
                "message": f"Requested version {version} is not active",
            },
        )
    if request.headers.get("X-Restli-Protocol-Version") != "2.0.0":
        raise RefusedError(
            400, {"message": "This API needs X-Restli-Protocol-Version: 2.0.0"}
        )


def _shown(commentary: str) -> str:
    """What LinkedIn shows of a little-text commentary: escapes resolved, and the
    text cut at the first unescaped reserved character."""
    out, i = [], 0
    while i < len(commentary):
        char = commentary[i]
        if char == "\\" and i + 1 < len(commentary) and commentary[i + 1] in RESERVED:
            out.append(commentary[i + 1])
            i += 2
            continue
        if char in RESERVED:
            break
        out.append(char)
        i += 1
    return "".join(out)


def _render(kept: dict[str, Any]) -> str:
    images = "".join(
        f'<img src="/_sandbox/media/{quote(urn, safe="")}" alt="">'
        for urn in kept["images"]
    )
    link = f"/feed/update/{quote(kept['id'], safe=':')}/"
    return (
        f"<p><strong>{escape(kept['author_name'])}</strong> · "
        f'<a href="{escape(link)}">{escape(kept["id"])}</a></p>'
        f"<p>{escape(kept['text'])}</p>{images}"
    )


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _unprocessable(field: str, problem: str) -> RefusedError:
    where = f"{field} :: " if field else ""
    return RefusedError(422, {"message": f"ERROR :: {where}{problem}"})


def _oauth_error(status: int, error: str, description: str) -> Response:
    return _json({"error": error, "error_description": description}, status)


def _json(body: Any, status: int) -> Response:
    answer = jsonify(body)
    answer.status_code = status
    return answer


def _drop() -> Response:
    """Carry-out-then-hang-up: close the connection without answering."""
    sock = request.environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.shutdown(socket.SHUT_RDWR)
    return Response(status=500)  # never reaches the client
