"""A Graph API sandbox: Facebook Pages and their Instagram accounts, as far as the
Facebook Page and Instagram adapters and Facebook Login for Pages use them.

Registered with ``add_page(page_id, name, page_token, ig_user_id=None)``; one
sandbox person manages every Page. It answers, under ``/{version}/``:

- Facebook Login: ``/dialog/oauth`` (approves at once: back to ``redirect_uri`` with
  ``code`` and ``state``), ``/oauth/access_token`` (the code, then
  ``fb_exchange_token``), ``/me/accounts`` and ``/debug_token``;
- Pages: ``POST /{page}/photos`` (unpublished, multipart ``source``),
  ``POST|GET /{page}/feed``, ``GET|DELETE /{post-or-photo}``,
  ``GET /{page}?fields=instagram_business_account``;
- Instagram: ``POST|GET /{ig-user}/media``, ``GET /{container}?fields=status_code``,
  ``POST /{ig-user}/media_publish``, ``GET|DELETE /{ig-media}``. Like Instagram it
  fetches each ``image_url`` itself; one that does not answer 200 with an image
  leaves the container in ``ERROR``.

``GET /{page}/feed`` (with ``since``) and ``GET /{ig-user}/media`` page by cursor as
Graph documents (https://developers.facebook.com/docs/graph-api/results): newest
first, ``limit`` (default 25; the feed refuses more than 100, the media edge caps
it at 100), ``after``, and ``paging`` with ``cursors.before``/``after`` and a
``next`` URL only while more posts follow.

Every call needs a token (``access_token`` or ``Authorization: Bearer``), and Page
calls need that Page's token. Errors and injected faults are Graph's error JSON
(``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``).
``/_sandbox/media/<name>`` serves images given to ``host_media`` (for tests and the
embedded demo, standing in for a signed URL).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

import httpx
from flask import Response, redirect, request
from PIL import Image, UnidentifiedImageError

from safepost.sandboxes.common import Sandbox, page

SCOPES = (
    "pages_show_list",
    "pages_manage_posts",
    "pages_read_engagement",
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_contents",
)
TASKS = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]
USER_ID = "1000"
SHORT_LIVED = 3600
LONG_LIVED = 60 * 24 * 3600
MAX_IMAGE_BYTES = 8 * 1024 * 1024
# Page sizes: an edge's default ``limit`` is 25; the feed refuses more than 100,
# the media edge caps it (Graph: "some edges may have a maximum on the limit").
FEED_PAGE = MEDIA_PAGE = 25
FEED_LIMIT = MEDIA_LIMIT = 100
_VERSION = re.compile(r"v\d+\.\d+")
_ATTACHED = re.compile(r"attached_media\[(\d+)\]")


class RefusedError(Exception):
    """A Graph error answer, raised from deep in a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def graph_error(
    status: int,
    message: str,
    code: int,
    subcode: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error.update(extra, fbtrace_id=secrets.token_urlsafe(9))
    body = json.dumps({"error": error})
    return Response(body, status, mimetype="application/json", headers=headers)


def refuse(
    status: int, message: str, code: int, subcode: int | None = None
) -> RefusedError:
    return RefusedError(graph_error(status, message, code, subcode))


def missing(node: str) -> RefusedError:
    return refuse(
        400,
        f"Unsupported request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        100,
        33,
    )


def ok(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), 200, mimetype="application/json")


def graph_time(at: float) -> str:
    return datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def top_fields(spec: str) -> set[str]:
    """``a,b{c,d},e`` -> {a, b, e}."""
    names, depth, current = set(), 0, ""
    for char in spec + ",":
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.add(current.split("{")[0].strip())
            current = ""
        else:
            current += char
    return names - {""}


def is_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False
    return True


@dataclass
class RegisteredPage:
    page_id: str
    name: str
    token: str
    ig_user_id: str | None


@dataclass
class UserGrant:
    expires_at: float
    long_lived: bool
    scopes: tuple[str, ...]


@dataclass
class Photo:
    page_id: str
    data: bytes
    content_type: str
    attached: bool = False


@dataclass
class Container:
    ig_user_id: str
    kind: str  # IMAGE, CHILD or CAROUSEL
    images: list[tuple[str, bytes]]
    caption: str = ""
    children: list[str] = field(default_factory=list)
    status: str = "IN_PROGRESS"
    error: str = ""
    polls_left: int = 0
    used: bool = False


class GraphSandbox(Sandbox):
    name = "graph"
    processing_polls = 1  # status reads a container answers IN_PROGRESS first
    regain_minutes = 5  # estimated_time_to_regain_access of the rate_limited fault

    def __init__(
        self,
        app_id: str = "sandbox-app",
        app_secret: str = "sandbox-secret",
        latency: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        super().__init__(latency)
        self.app_id, self.app_secret = app_id, app_secret
        self.pages: dict[str, RegisteredPage] = {}
        # Page token: its Page and when it expires (None: never).
        self.page_tokens: dict[str, tuple[str, float | None]] = {}
        self.users: dict[str, UserGrant] = {}
        self.codes: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.photos: dict[str, Photo] = {}
        self.containers: dict[str, Container] = {}
        self.images: dict[str, list[tuple[str, bytes]]] = {}
        self.hosted: dict[str, tuple[str, bytes]] = {}
        self._install_graph_routes()
        self.app.before_request(self._reset_own)

    def _reset_own(self) -> None:
        """``POST /_sandbox/reset`` also forgets photos, containers and images."""
        if request.method == "POST" and request.path == "/_sandbox/reset":
            with self.state.lock:
                for kept in (self.photos, self.containers, self.images, self.codes):
                    kept.clear()

    @property
    def app_token(self) -> str:
        return f"{self.app_id}|{self.app_secret}"

    def add_page(
        self, page_id: str, name: str, page_token: str, ig_user_id: str | None = None
    ) -> None:
        """A Page the sandbox person manages; ``page_token`` is its long-lived token."""
        with self.state.lock:
            self.pages[page_id] = RegisteredPage(page_id, name, page_token, ig_user_id)
            self.page_tokens[page_token] = (page_id, None)

    def host_media(
        self, name: str, data: bytes, content_type: str = "image/jpeg"
    ) -> str:
        """Serve ``data`` at a URL (as a signed URL would); the URL."""
        with self.state.lock:
            self.hosted[name] = (content_type, data)
        return f"{self.base_url}/_sandbox/media/{name}"

    def image_bytes(self, post_id: str) -> list[bytes]:
        with self.state.lock:
            return [data for _, data in self.images.get(post_id, [])]

    # -- routes -----------------------------------------------------------------------

    def _install_graph_routes(self) -> None:
        app = self.app
        app.add_url_rule("/", "home", self._home)
        app.add_url_rule("/_sandbox/media/<name>", "hosted", self._hosted)
        app.add_url_rule("/dialog/oauth", "dialog", self._dialog)
        app.add_url_rule("/<version>/dialog/oauth", "vdialog", self._dialog)
        rules: list[tuple[str, str, Callable[..., Response], list[str]]] = [
            ("oauth/access_token", "token", self._access_token, ["GET", "POST"]),
            ("debug_token", "debug", self._debug_token, ["GET"]),
            ("me/accounts", "accounts", self._accounts, ["GET"]),
            ("<node>", "node", self._node, ["GET", "DELETE"]),
            ("<node>/<edge>", "edge", self._edge, ["GET", "POST"]),
        ]
        for path, endpoint, view, methods in rules:
            rule = f"/<version>/{path}"
            app.add_url_rule(rule, endpoint, self._wrap(view), methods=methods)

    def _wrap(self, view: Callable[..., Response]) -> Callable[..., Response]:
        def answer(version: str, **kwargs: str) -> Response:
            if not _VERSION.fullmatch(version):
                return graph_error(400, f"Unknown path components: /{version}", 2500)
            return self._answer(view, kwargs)

        return answer

    def _answer(
        self, view: Callable[..., Response], kwargs: dict[str, str]
    ) -> Response:
        fault = self.fault()
        if fault in ("expired_token", "rate_limited", "server_error", "refuse"):
            return self._fault(fault, kwargs.get("node", ""), kwargs.get("edge", ""))
        try:
            response = view(**kwargs)
        except RefusedError as refused:
            response = refused.response
        if fault == "timeout":
            self.hold()
        elif fault == "malformed":
            response = Response(
                "<html><body>Sorry</body></html>", 200, mimetype="text/html"
            )
        elif fault == "drop_after":
            response = self._drop()
        return response

    def _drop(self) -> Response:
        """The request was carried out; now close the connection unanswered."""
        sock = request.environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)  # werkzeug's write then drops quietly
            return Response("", 500)
        # Otherwise a body shorter than announced: the client sees a cut connection.
        return Response(iter([b'{"id": "']), 200, headers={"Content-Length": "64"})

    def _fault(self, fault: str, node: str, edge: str) -> Response:
        instagram = self._is_instagram(node)
        if fault == "expired_token":
            return _expired().response
        if fault == "rate_limited":
            kind = "instagram" if instagram else "pages"
            usage = {
                "type": kind,
                "call_count": 100,
                "total_cputime": 20,
                "total_time": 30,
            }
            usage["estimated_time_to_regain_access"] = self.regain_minutes
            headers = {"X-Business-Use-Case-Usage": json.dumps({node or "0": [usage]})}
            if instagram:
                app_usage = {"call_count": 100, "total_cputime": 20, "total_time": 30}
                headers["X-App-Usage"] = json.dumps(app_usage)
                return graph_error(
                    400, "(#4) Application request limit reached", 4, headers=headers
                )
            return graph_error(
                400, "(#32) Page request limit reached", 32, headers=headers
            )
        if fault == "server_error":
            message = (
                "An unexpected error has occurred. Please retry your request later."
            )
            return graph_error(500, message, 2, is_transient=True)
        if instagram:
            return graph_error(
                400,
                "The submitted image with aspect ratio cannot be published.",
                36003,
                2207009,
                error_user_title="Invalid aspect ratio",
                error_user_msg="The image's aspect ratio is not supported.",
            )
        if edge == "photos":
            return graph_error(400, "(#324) Missing or invalid image file", 324)
        return graph_error(
            400,
            "(#100) Invalid parameter",
            100,
            error_user_title="Post rejected",
            error_user_msg="This content can't be shared on Facebook.",
        )

    def _is_instagram(self, node: str) -> bool:
        with self.state.lock:
            post = self.state.posts.get(node)
            return (
                node in self.containers
                or any(p.ig_user_id == node for p in self.pages.values())
                or (post is not None and post.get("platform") == "instagram")
            )

    # -- tokens -----------------------------------------------------------------------

    def _token(self) -> str:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = value.strip() if scheme.lower() in ("bearer", "oauth") else ""
        token = token or request.values.get("access_token", "")
        if not token:
            raise refuse(
                400,
                "An active access token must be used to query information about the "
                "current user.",
                2500,
            )
        return token

    def _caller(self) -> tuple[str, str]:
        """("user", token) or ("page", page_id) of a valid token."""
        token = self._token()
        with self.state.lock:
            grant = self.users.get(token)
            owner = self.page_tokens.get(token)
        if grant is not None:
            if grant.expires_at < time.time():
                raise _expired()
            return "user", token
        if owner is not None:
            page_id, expires_at = owner
            if expires_at is not None and expires_at < time.time():
                raise _expired()
            return "page", page_id
        raise refuse(400, "Invalid OAuth access token - Cannot parse access token", 190)

    def _as_page(self, page_id: str, allow_user: bool = False) -> None:
        kind, who = self._caller()
        if kind == "page" and who == page_id:
            return
        if kind == "user" and allow_user:
            return
        if kind == "user":
            raise refuse(
                400,
                "(#210) A page access token is required to request this resource.",
                210,
            )
        raise refuse(400, "(#200) Permissions error", 200)

    def _as_ig(self, ig_user_id: str) -> None:
        with self.state.lock:
            pages = [
                p.page_id for p in self.pages.values() if p.ig_user_id == ig_user_id
            ]
        kind, who = self._caller()
        if kind == "user" or who in pages:
            return
        raise refuse(400, "(#200) Permissions error", 200)

    # -- Facebook Login -------------------------------------------------------------

    def _dialog(self, version: str = "") -> Any:
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != self.app_id:
            return graph_error(
                400, "Error validating application. Invalid application ID.", 101
            )
        if not redirect_uri.startswith(("http://", "https://")):
            return graph_error(
                400, "(#100) The parameter redirect_uri is required", 100
            )
        if args.get("response_type", "code") != "code":
            return graph_error(400, "(#100) Unsupported response_type", 100)
        scopes = tuple(s for s in re.split(r"[,\s]+", args.get("scope", "")) if s)
        code = secrets.token_urlsafe(18)
        with self.state.lock:
            self.codes[code] = (redirect_uri, scopes or SCOPES)
        query = {"code": code, **({"state": args["state"]} if "state" in args else {})}
        joiner = "&" if "?" in redirect_uri else "?"
        return redirect(f"{redirect_uri}{joiner}{urlencode(query)}", 302)

    def _access_token(self) -> Response:
        values = request.values
        if values.get("client_id") != self.app_id:
            raise refuse(
                400, "Error validating application. Invalid application ID.", 101
            )
        if values.get("client_secret") != self.app_secret:
            raise refuse(400, "Error validating client secret.", 1)
        if values.get("grant_type") == "fb_exchange_token":
            with self.state.lock:
                grant = self.users.get(values.get("fb_exchange_token", ""))
            if grant is None or grant.expires_at < time.time():
                raise refuse(
                    400, "Invalid OAuth access token - Cannot parse access token", 190
                )
            return self._issue(LONG_LIVED, True, grant.scopes)
        code = values.get("code", "")
        with self.state.lock:
            issued = self.codes.pop(code, None)
        if issued is None:
            raise refuse(400, "This authorization code has been used.", 100, 36009)
        if issued[0] != values.get("redirect_uri"):
            raise refuse(
                400,
                "Error validating verification code. Please make sure your "
                "redirect_uri is identical to the one you used in the OAuth dialog "
                "request",
                100,
                36008,
            )
        return self._issue(SHORT_LIVED, False, issued[1])

    def _issue(
        self, lifetime: int, long_lived: bool, scopes: tuple[str, ...]
    ) -> Response:
        token = "EAA" + secrets.token_urlsafe(24)
        with self.state.lock:
            self.users[token] = UserGrant(time.time() + lifetime, long_lived, scopes)
        return ok(
            {"access_token": token, "token_type": "bearer", "expires_in": lifetime}
        )

    def _accounts(self) -> Response:
        kind, who = self._caller()
        if kind != "user":
            raise refuse(
                400,
                "(#100) Tried accessing nonexisting field (accounts) on node type "
                "(Page)",
                100,
            )
        with self.state.lock:
            grant = self.users[who]
            data = [self._account(p, grant) for p in self.pages.values()]
        cursors = {"before": "MA==", "after": "MA=="}
        return ok({"data": data, "paging": {"cursors": cursors}})

    def _account(self, registered: RegisteredPage, grant: UserGrant) -> dict[str, Any]:
        token = registered.token
        # A short-lived user token gives short-lived Page tokens.
        if not grant.long_lived:
            token = "EAAP" + secrets.token_urlsafe(24)
            self.page_tokens[token] = (registered.page_id, grant.expires_at)
        return {
            "id": registered.page_id,
            "name": registered.name,
            "access_token": token,
            "category": "School",
            "tasks": TASKS,
        }

    def _debug_token(self) -> Response:
        if self._token() != self.app_token:
            raise refuse(
                400,
                "(#100) You must provide an app access token, or a user access token "
                "that is an owner or developer of the app",
                100,
            )
        token = request.args.get("input_token", "")
        if not token:
            raise refuse(400, "(#100) The parameter input_token is required", 100)
        with self.state.lock:
            grant, owner = self.users.get(token), self.page_tokens.get(token)
        data: dict[str, Any] = {
            "app_id": self.app_id,
            "application": "Safepost sandbox",
        }
        data |= {"user_id": USER_ID, "issued_at": int(time.time())}
        if grant is not None:
            data |= {"type": "USER", "expires_at": int(grant.expires_at)}
            data |= {
                "is_valid": grant.expires_at > time.time(),
                "scopes": list(grant.scopes),
            }
        elif owner is not None:
            expires = owner[1]
            data |= {"type": "PAGE", "profile_id": owner[0], "scopes": list(SCOPES)}
            data |= {"expires_at": int(expires or 0)}
            data |= {"is_valid": expires is None or expires > time.time()}
        else:
            data = {"error": {"code": 190, "message": "Invalid OAuth access token."}}
            data |= {"is_valid": False, "scopes": []}
        return ok({"data": data})

    # -- objects ----------------------------------------------------------------------

    def _node(self, node: str) -> Response:
        with self.state.lock:
            registered = self.pages.get(node)
            post = self.state.posts.get(node)
            container = self.containers.get(node)
            photo = self.photos.get(node)
        if registered is not None and request.method == "GET":
            return self._page(registered)
        if post is not None:
            return self._post(node, post)
        if container is not None and request.method == "GET":
            return self._container(node, container)
        if photo is not None:
            self._as_page(photo.page_id, allow_user=request.method == "GET")
            if request.method == "DELETE":
                with self.state.lock:
                    self.photos.pop(node, None)
                return ok({"success": True})
            return ok({"id": node})
        raise missing(node)

    def _page(self, registered: RegisteredPage) -> Response:
        self._as_page(registered.page_id, allow_user=True)
        fields = top_fields(request.args.get("fields", "id,name"))
        body: dict[str, Any] = {"id": registered.page_id}
        if "name" in fields:
            body["name"] = registered.name
        if "instagram_business_account" in fields and registered.ig_user_id:
            body["instagram_business_account"] = {"id": registered.ig_user_id}
        return ok(body)

    def _post(self, post_id: str, post: dict[str, Any]) -> Response:
        instagram = post["platform"] == "instagram"
        if instagram:
            self._as_ig(post["account"])
        else:
            self._as_page(post["account"], allow_user=request.method == "GET")
        if request.method == "DELETE":
            with self.state.lock:
                self.forget(post_id)
                self.images.pop(post_id, None)
            return ok({"success": True})
        fields = top_fields(request.args.get("fields", "id"))
        body = {"id": post_id}
        link = "permalink" if instagram else "permalink_url"
        if link in fields:
            body[link] = post["permalink"]
        return ok(body)

    def _container(self, container_id: str, container: Container) -> Response:
        self._as_ig(container.ig_user_id)
        with self.state.lock:
            if container.status == "IN_PROGRESS" and container.polls_left <= 0:
                container.status = "ERROR" if container.error else "FINISHED"
            container.polls_left -= 1
            body = {"id": container_id, "status_code": container.status}
            if container.status == "ERROR":
                body["status"] = container.error
        return ok(body)

    def _edge(self, node: str, edge: str) -> Response:
        routes: dict[tuple[str, str], Callable[[str], Response]] = {
            ("POST", "photos"): self._photos,
            ("POST", "feed"): self._publish_feed,
            ("GET", "feed"): self._feed,
            ("POST", "media"): self._create_container,
            ("GET", "media"): self._media,
            ("POST", "media_publish"): self._media_publish,
        }
        view = routes.get((request.method, edge))
        if view is None:
            raise missing(f"{node}/{edge}")
        return view(node)

    # -- Facebook Pages -------------------------------------------------------------

    def _registered(self, page_id: str) -> RegisteredPage:
        with self.state.lock:
            registered = self.pages.get(page_id)
        if registered is None:
            raise missing(page_id)
        return registered

    def _photos(self, page_id: str) -> Response:
        self._registered(page_id)
        self._as_page(page_id)
        if request.values.get("published", "true").lower() not in ("false", "0"):
            raise refuse(
                400,
                "(#100) The sandbox only stages unpublished photos (published=false)",
                100,
            )
        source = request.files.get("source")
        data = source.read() if source is not None else b""
        if not data or not is_image(data):
            raise refuse(400, "(#324) Requires upload file", 324)
        photo_id = str(self.state.next_id())
        content_type = source.mimetype if source is not None else "image/jpeg"
        with self.state.lock:
            self.photos[photo_id] = Photo(page_id, data, content_type)
        return ok({"id": photo_id})

    def _publish_feed(self, page_id: str) -> Response:
        registered = self._registered(page_id)
        self._as_page(page_id)
        message = request.values.get("message", "")
        photo_ids = self._attached(page_id)
        if not message and not photo_ids:
            raise refuse(400, "(#100) Must provide message or attached_media", 100)
        if len(message) > 63206:
            raise refuse(400, "(#100) The message is too long", 100)
        post_id = f"{page_id}_{self.state.next_id()}"
        with self.state.lock:
            for photo_id in photo_ids:
                self.photos[photo_id].attached = True
            images = [
                (self.photos[i].content_type, self.photos[i].data) for i in photo_ids
            ]
            self._keep(
                "facebook",
                post_id,
                registered.page_id,
                registered.name,
                message,
                images,
            )
        return ok({"id": post_id})

    def _attached(self, page_id: str) -> list[str]:
        found = sorted(
            (int(m.group(1)), key)
            for key in request.values
            if (m := _ATTACHED.fullmatch(key))
        )
        photo_ids = []
        for index, key in found:
            invalid = refuse(
                400,
                f"(#100) param attached_media[{index}] must be a valid media_fbid",
                100,
            )
            try:
                value = json.loads(request.values[key])
            except ValueError:
                raise invalid from None
            photo_id = value.get("media_fbid") if isinstance(value, dict) else None
            with self.state.lock:
                photo = self.photos.get(str(photo_id))
            if photo is None or photo.page_id != page_id or photo.attached:
                raise invalid
            photo_ids.append(str(photo_id))
        return photo_ids

    def _feed(self, page_id: str) -> Response:
        self._registered(page_id)
        self._as_page(page_id, allow_user=True)
        fields = top_fields(request.args.get("fields", "id,message,created_time"))
        since = _integer_arg("since", 0)
        posts = self._posts("facebook", page_id, since)
        window, paging = _page(posts, FEED_PAGE, FEED_LIMIT, cap=False)
        body: dict[str, Any] = {"data": [self._feed_item(p, fields) for p in window]}
        return ok(body | ({"paging": paging} if paging else {}))

    def _feed_item(self, post: dict[str, Any], fields: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": post["id"],
            "created_time": graph_time(post["created"]),
        }
        if post["text"]:
            item["message"] = post["text"]
        if "permalink_url" in fields:
            item["permalink_url"] = post["permalink"]
        count = post["media_count"]
        if "attachments" in fields and count == 1:
            item["attachments"] = {"data": [{"type": "photo"}]}
        elif "attachments" in fields and count > 1:
            subs = {"data": [{"type": "photo"} for _ in range(count)]}
            item["attachments"] = {"data": [{"type": "album", "subattachments": subs}]}
        return item

    # -- Instagram --------------------------------------------------------------------

    def _ig_user(self, ig_user_id: str) -> RegisteredPage:
        with self.state.lock:
            linked = [p for p in self.pages.values() if p.ig_user_id == ig_user_id]
        if not linked:
            raise missing(ig_user_id)
        self._as_ig(ig_user_id)
        return linked[0]

    def _create_container(self, ig_user_id: str) -> Response:
        self._ig_user(ig_user_id)
        values = request.values
        media_type = values.get("media_type", "IMAGE").upper()
        if media_type == "CAROUSEL":
            container = self._carousel(ig_user_id, values.get("children", ""))
            container.caption = values.get("caption", "")
        elif media_type == "IMAGE":
            url = values.get("image_url", "")
            if not url:
                raise refuse(400, "(#100) The parameter image_url is required.", 100)
            fetched = _fetch(url)
            item = values.get("is_carousel_item", "").lower() == "true"
            container = Container(ig_user_id, "CHILD" if item else "IMAGE", [])
            container.caption = "" if item else values.get("caption", "")
            if fetched is None:
                container.error = "2207052"  # media could not be fetched from this URI
            else:
                container.images = [fetched]
        else:
            raise refuse(
                400,
                "The media type entered is not one of the expected media types.",
                100,
                2207023,
            )
        container.polls_left = self.processing_polls
        container_id = str(self.state.next_id())
        with self.state.lock:
            self.containers[container_id] = container
        return ok({"id": container_id})

    def _carousel(self, ig_user_id: str, children: str) -> Container:
        ids = [c.strip() for c in children.split(",") if c.strip()]
        with self.state.lock:
            items = [self.containers.get(i) for i in ids]
        valid = [
            c
            for c in items
            if c and c.kind == "CHILD" and c.ig_user_id == ig_user_id and not c.used
        ]
        if not 2 <= len(ids) <= 10 or len(valid) != len(ids):
            raise refuse(
                400, "(#100) The children must be 2 to 10 carousel item containers", 100
            )
        with self.state.lock:
            for child in valid:
                child.used = True
        error = next((c.error for c in valid if c.error), "")
        images = [image for c in valid for image in c.images]
        return Container(ig_user_id, "CAROUSEL", images, children=ids, error=error)

    def _media_publish(self, ig_user_id: str) -> Response:
        owner = self._ig_user(ig_user_id)
        creation_id = request.values.get("creation_id", "")
        if not creation_id:
            raise refuse(400, "(#100) The parameter creation_id is required.", 100)
        with self.state.lock:
            container = self.containers.get(creation_id)
            if (
                container is None
                or container.ig_user_id != ig_user_id
                or container.kind == "CHILD"
            ):
                raise missing(creation_id)
            if container.status != "FINISHED":
                raise refuse(400, "Media ID is not available", 9007, 2207027)
            container.status = "PUBLISHED"
            media_id = str(self.state.next_id())
            self._keep(
                "instagram",
                media_id,
                ig_user_id,
                owner.name,
                container.caption,
                container.images,
            )
        return ok({"id": media_id})

    def _media(self, ig_user_id: str) -> Response:
        self._ig_user(ig_user_id)
        fields = top_fields(request.args.get("fields", "id"))
        posts = self._posts("instagram", ig_user_id, 0)
        window, paging = _page(posts, MEDIA_PAGE, MEDIA_LIMIT, cap=True)
        data = []
        for post in window:
            album = post["media_count"] > 1
            item: dict[str, Any] = {"id": post["id"]}
            item |= {"caption": post["text"], "permalink": post["permalink"]}
            item |= {"timestamp": graph_time(post["created"])}
            item["media_type"] = "CAROUSEL_ALBUM" if album else "IMAGE"
            if album:
                kids = [{"id": f"{post['id']}{i}"} for i in range(post["media_count"])]
                item["children"] = {"data": kids}
            data.append({k: v for k, v in item.items() if k in fields or k == "id"})
        return ok({"data": data} | ({"paging": paging} if paging else {}))

    # -- posts and the page ---------------------------------------------------------

    def _keep(
        self,
        platform: str,
        post_id: str,
        account: str,
        account_name: str,
        text: str,
        images: list[tuple[str, bytes]],
    ) -> None:
        self.images[post_id] = list(images)
        self.keep(
            post_id,
            {
                "platform": platform,
                "account": account,
                "account_name": account_name,
                "text": text,
                "created": time.time(),
                "permalink": f"{self.base_url}/#post-{post_id}",
                "media_count": len(images),
                "image_sha256": [
                    hashlib.sha256(data).hexdigest() for _, data in images
                ],
            },
        )

    def _posts(self, platform: str, account: str, since: int) -> list[dict[str, Any]]:
        posts = [
            p
            for p in self.live()
            if p["platform"] == platform
            and p["account"] == account
            and p["created"] >= since
        ]
        return sorted(posts, key=_order, reverse=True)

    def _hosted(self, name: str) -> Response:
        with self.state.lock:
            found = self.hosted.get(name)
        if found is None:
            return Response("not found", 404, mimetype="text/plain")
        return Response(found[1], 200, mimetype=found[0])

    def _home(self) -> Response:
        posts = sorted(self.live(), key=lambda p: p["created"], reverse=True)
        return page("Graph sandbox: Facebook Pages and Instagram", posts, self._render)

    def _render(self, post: dict[str, Any]) -> str:
        label = "Facebook" if post["platform"] == "facebook" else "Instagram"
        with self.state.lock:
            kept = list(self.images.get(post["id"], []))
        images = "".join(
            f"<img alt='' src='data:{escape(ctype)};base64,"
            f"{base64.b64encode(data).decode()}'>"
            for ctype, data in kept
        )
        when = graph_time(post["created"])
        return (
            f"<p id='post-{escape(post['id'])}'><strong>{label}</strong> · "
            f"{escape(post['account_name'])} · <time>{escape(when)}</time></p>"
            f"<p>{escape(post['text'])}</p>{images}"
        )


def _expired() -> RefusedError:
    return refuse(
        400,
        "Error validating access token: Session has expired. The current time is "
        "later than the token's expiry.",
        190,
        463,
    )


def _integer_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise refuse(400, f"(#100) Param {name} must be an integer", 100)
    return int(raw)


# -- cursor-based pagination ---------------------------------------------------------


def _order(post: dict[str, Any]) -> tuple[float, str]:
    """Where a post sits in an edge, newest first (ties by id)."""
    return float(post["created"]), str(post["id"])


def _cursor(post: dict[str, Any]) -> str:
    """An opaque cursor pointing at a post (its place in the edge's order)."""
    raw = json.dumps(list(_order(post))).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_place(cursor: str) -> tuple[float, str]:
    invalid = refuse(400, "(#100) The parameter after is not a valid cursor", 100)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, post_id = json.loads(raw)
    except (ValueError, TypeError):
        raise invalid from None
    if not isinstance(created, int | float) or not isinstance(post_id, str):
        raise invalid
    return float(created), post_id


def _page(
    posts: list[dict[str, Any]], default: int, most: int, *, cap: bool
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of ``posts`` (newest first) after the ``after`` cursor, and its
    ``paging`` (``cursors.before``/``after``; ``next`` only when more follow), as
    Graph pages an edge. ``limit`` above ``most`` is capped (``cap``) or refused."""
    limit = _integer_arg("limit", default)
    if limit < 1 or (limit > most and not cap):
        raise refuse(400, f"(#100) The parameter limit must be 1 to {most}", 100)
    limit = min(limit, most)
    if request.args.get("before") is not None:
        raise refuse(400, "(#100) The sandbox pages forward only (after)", 100)
    after = request.args.get("after")
    if after is not None:
        place = _cursor_place(after)
        posts = [p for p in posts if _order(p) < place]
    window = posts[:limit]
    if not window:
        return [], None
    last = _cursor(window[-1])
    paging: dict[str, Any] = {"cursors": {"before": _cursor(window[0]), "after": last}}
    if len(posts) > limit:
        query = [
            (k, v) for k, v in request.args.items(multi=True) if k not in ("after",)
        ]
        paging["next"] = f"{request.base_url}?{urlencode([*query, ('after', last)])}"
    return window, paging


def _fetch(url: str) -> tuple[str, bytes] | None:
    """GET the image as Instagram would; None unless 200 with an image."""
    try:
        response = httpx.get(url, timeout=5.0, follow_redirects=False)
    except httpx.HTTPError:
        return None
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    data = response.content
    if response.status_code != 200 or not content_type.startswith("image/"):
        return None
    if len(data) > MAX_IMAGE_BYTES or not is_image(data):
        return None
    return content_type, data
