"""The device uploader: send photos to intake from a laptop, then (on a personal device)
delete each original once the server's receipt proves it holds exactly those bytes.

Rules, in the order they protect the photos:

- a file is deleted only after a receipt whose SHA-256 equals both the hash of the file
  before upload and the hash of the bytes actually sent (a tampered or mismatched
  receipt deletes nothing);
- on a trust-owned device nothing is deleted unless ``--delete-after-upload``;
- with the file go its sidecars: same-stem ``.AAE``, ``.xmp`` (also ``name.ext.xmp``)
  and a live photo's ``.mov``;
- then a deletion confirmation is sent; one that cannot be sent is kept in the config
  file and sent on the next run;
- re-running skips files whose hash the server already holds (and finishes their
  deletion if it is still expected).

The config file (``$SAFEPOST_DEVICE_CONFIG`` or ``~/.config/safepost/device.json``,
mode 0600 in a 0700 folder) holds the server URL, the device token and, to spare a
password prompt on every run, the staff API token with its expiry (12 hours at most).
The password itself is never stored.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

CHUNK = 1024 * 1024
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}
SIDECAR_SUFFIXES = {".aae", ".xmp", ".mov"}
PER_POST = 10  # intake's files-per-post limit
TOKEN_MARGIN = 120  # seconds: sign in again this long before the staff token expires
METHOD = "uploader-unlink"


class UploaderError(Exception):
    """Something the person at the keyboard can understand and act on."""


class HttpError(UploaderError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message


# -- config --------------------------------------------------------------------------


def default_config_path() -> Path:
    env = os.environ.get("SAFEPOST_DEVICE_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "safepost" / "device.json"


@dataclass
class DeviceConfig:
    server: str
    device_id: str
    device_token: str
    kind: str = ""
    school: str = ""
    owner: str = ""
    staff_token: str | None = None
    staff_token_expires: float | None = None
    pending_confirmations: list[dict[str, str]] = field(default_factory=list)

    def staff_token_valid(self, now: float) -> bool:
        return bool(
            self.staff_token
            and self.staff_token_expires
            and now < self.staff_token_expires - TOKEN_MARGIN
        )


def load_config(path: Path) -> DeviceConfig:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UploaderError(
            f"no device config at {path}: run `safepost device login` first"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UploaderError(
            f"{path} is readable by others; run `chmod 600 {path}` (and consider "
            "asking IT to revoke the device)"
        )
    data = json.loads(path.read_text())
    known = DeviceConfig.__dataclass_fields__
    return DeviceConfig(**{k: v for k, v in data.items() if k in known})


def save_config(path: Path, config: DeviceConfig) -> None:
    """Write atomically, readable only by its owner (0600 in a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(config), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# -- progress --------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a text stream (stderr), redrawn at most 10 times/s."""

    def __init__(self, total: int, out: IO[str] | None = None, width: int = 30):
        self.total = max(total, 1)
        self.done = 0
        self.out = out
        self.width = width
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._drawn >= 0.1 or self.done >= self.total:
            self._drawn = now
            self.draw()

    def draw(self) -> None:
        if self.out is None:
            return
        share = min(self.done / self.total, 1.0)
        filled = int(share * self.width)
        took = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / took / 1e6
        self.out.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%} "
            f"{self.done / 1e6:7.1f}/{self.total / 1e6:.1f} MB {rate:6.1f} MB/s"
        )
        self.out.flush()

    def finish(self) -> None:
        if self.out is not None:
            self.draw()
            self.out.write("\n")
            self.out.flush()


# -- HTTP ---------------------------------------------------------------------------


class Server:
    """Intake and the portal's token endpoint over plain http.client (keep-alive)."""

    def __init__(
        self,
        base_url: str,
        *,
        staff_token: str | None = None,
        device_token: str | None = None,
        timeout: float = 300.0,
    ):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UploaderError(f"not a server URL: {base_url}")
        self.base = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.root = parts.path
        self.staff_token = staff_token
        self.device_token = device_token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if auth and self.staff_token:
            headers["Authorization"] = f"Bearer {self.staff_token}"
        if auth and self.device_token:
            headers["X-Device-Token"] = self.device_token
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: Iterable[bytes] | None = None,
        length: int = 0,
        content_type: str = "",
        auth: bool = True,
    ) -> Any:
        headers = self._headers(auth)
        payload: bytes | None = None
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
            length = len(payload)
        elif content_type:
            headers["Content-Type"] = content_type
        headers["Content-Length"] = str(length)
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.putrequest(method, self.root + path, skip_accept_encoding=True)
                for key, value in headers.items():
                    conn.putheader(key, value)
                conn.endheaders()
                if payload is not None:
                    conn.send(payload)
                elif body is not None:
                    for chunk in body:
                        conn.send(chunk)
                response = conn.getresponse()
                raw = response.read()
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ) as exc:
                self.close()
                if attempt == 2 or body is not None:
                    raise UploaderError(f"{self.base} closed the connection") from exc
                continue  # a kept-alive connection the server had closed: once more
            except OSError as exc:
                self.close()
                raise UploaderError(f"cannot reach {self.base}: {exc}") from exc
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return _answer(response.status, raw)
        raise AssertionError("unreachable")

    # -- calls --

    def enrol(self, code: str) -> dict[str, Any]:
        """Exchange the code for the device token (needs the owner's staff token)."""
        return dict(self.request("POST", "/intake/api/enrol", json_body={"code": code}))

    def sign_in(self, username: str, password: str) -> tuple[str, float]:
        body = self.request(
            "POST",
            "/auth/token",
            json_body={"username": username, "password": password},
            auth=False,
        )
        return str(body["token"]), time.time() + float(body.get("expires_in", 3600))

    def device(self) -> dict[str, Any]:
        return dict(self.request("GET", "/intake/api/device"))

    def held(self, sha256s: list[str]) -> dict[str, dict[str, Any]]:
        if not sha256s:
            return {}
        body = self.request(
            "POST", "/intake/api/photos/held", json_body={"sha256": sha256s}
        )
        return {h["sha256"]: h for h in body["held"]}

    def confirm(self, receipt_id: str, deleted_at: str) -> dict[str, Any]:
        return dict(
            self.request(
                "POST",
                f"/intake/api/receipts/{receipt_id}/deletion",
                json_body={"deleted_at": deleted_at, "method": METHOD},
            )
        )

    def upload(
        self,
        photos: list[LocalPhoto],
        fields: list[tuple[str, str]],
        progress: Progress,
    ) -> tuple[dict[str, Any], set[Path]]:
        """POST one post as multipart, streamed from disk; the answer and the files
        sent whole."""
        form = Multipart(fields, photos, progress)
        answer = self.request(
            "POST",
            "/intake/api/posts",
            body=form.chunks(),
            length=form.length,
            content_type=form.content_type,
        )
        return dict(answer), form.sent


def _answer(status: int, raw: bytes) -> Any:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"error": "not_json", "message": raw[:200].decode(errors="replace")}
    if status >= 400:
        if not isinstance(body, dict):
            body = {}
        raise HttpError(
            status,
            str(body.get("error", "http_error")),
            str(body.get("message", "the server refused")),
        )
    return body


@dataclass(frozen=True)
class LocalPhoto:
    path: Path
    size: int
    sha256: str


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_all(files: list[Path], threads: int = 4) -> list[LocalPhoto]:
    """Size and SHA-256 of each file, hashed in parallel (hashlib drops the GIL)."""

    def one(path: Path) -> LocalPhoto:
        return LocalPhoto(path, path.stat().st_size, hash_file(path))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, files))


class Multipart:
    """multipart/form-data with a known length, files streamed in 1 MiB chunks."""

    def __init__(
        self,
        fields: list[tuple[str, str]],
        photos: list[LocalPhoto],
        progress: Progress,
    ):
        self.boundary = f"safepost-{secrets.token_hex(16)}"
        self.fields = fields
        self.photos = photos
        self.progress = progress
        self.sent: set[Path] = set()  # sent whole (length as hashed)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self.length = sum(len(b) for b in self._frame()) + sum(p.size for p in photos)

    def _frame(self) -> Iterator[bytes]:
        for name, value in self.fields:
            yield (
                f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n"
            ).encode()
        for photo in self.photos:
            filename = (
                photo.path.name.replace('"', "_").replace("\r", "").replace("\n", "")
            )
            yield (
                f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="photos"; '
                f'filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            yield b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()

    def chunks(self) -> Iterator[bytes]:
        frame = self._frame()
        for _field in self.fields:
            yield next(frame)
        for photo in self.photos:
            yield next(frame)
            sent = 0
            with photo.path.open("rb") as fh:
                while sent < photo.size and (chunk := fh.read(CHUNK)):
                    chunk = chunk[: photo.size - sent]
                    sent += len(chunk)
                    self.progress.update(len(chunk))
                    yield chunk
            if sent != photo.size:
                raise UploaderError(f"{photo.path} changed while it was being sent")
            self.sent.add(photo.path)
            yield next(frame)
        yield next(frame)


# -- deletion ------------------------------------------------------------------------


def sidecars(path: Path) -> list[Path]:
    """Same-stem .AAE, .xmp and live-photo .mov files, and ``name.ext.xmp``."""
    found = []
    stem = path.stem.lower()
    for candidate in path.parent.iterdir():
        if candidate == path or not candidate.is_file():
            continue
        name = candidate.name.lower()
        if (
            candidate.stem.lower() == stem
            and candidate.suffix.lower() in SIDECAR_SUFFIXES
        ) or name == path.name.lower() + ".xmp":
            found.append(candidate)
    return sorted(found)


def receipt_matches(photo: LocalPhoto, receipt: dict[str, Any]) -> bool:
    """The receipt proves the server holds exactly this file's bytes: the hash the
    server computed over what it received equals the local file's (which is checked
    again just before deleting, in case the file changed since)."""
    claimed = str(receipt.get("sha256", ""))
    return (
        len(claimed) == 64
        and claimed == photo.sha256
        and receipt.get("bytes") == photo.size
    )


def delete_original(photo: LocalPhoto) -> list[Path]:
    """Remove the file (after checking it is still the file that was uploaded) and
    its sidecars; the paths removed."""
    if hash_file(photo.path) != photo.sha256:
        raise UploaderError(f"{photo.path} changed after upload; it was not deleted")
    extra = sidecars(photo.path)
    photo.path.unlink()
    removed = [photo.path]
    for side in extra:
        try:
            side.unlink()
            removed.append(side)
        except FileNotFoundError:
            pass
    return removed


# -- the run ---------------------------------------------------------------------------


@dataclass
class Outcome:
    uploaded: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def photos_in(paths: Iterable[Path]) -> list[Path]:
    """The photo files named (a folder: its photos, not recursive), no repeats."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
                )
            )
        elif path.is_file():
            out.append(path)
        else:
            raise UploaderError(f"no such file: {path}")
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def upload(
    server: Server,
    config: DeviceConfig,
    paths: list[Path],
    *,
    caption: str,
    school: str | None,
    accounts: list[str],
    purpose: str = "social_media",
    publish_on: str | None = None,
    delete_after_upload: bool = False,
    per_post: int = PER_POST,
    out: IO[str] | None = sys.stderr,
    save: Callable[[DeviceConfig], None] | None = None,
) -> Outcome:
    """Upload, verify receipts, delete where required, confirm. See the module doc."""
    outcome = Outcome()
    _retry_confirmations(server, config, outcome, save)
    device = server.device()
    if device.get("status") != "approved":
        raise UploaderError(
            f"this device is {device.get('status')}; ask IT to approve it first"
        )
    must_delete = device.get("kind") == "personal" or delete_after_upload
    school = school or str(device["school"])
    files = photos_in(paths)
    if not files:
        raise UploaderError("no photos to upload")
    local = hash_all(files)
    held = server.held(sorted({p.sha256 for p in local}))
    todo: list[LocalPhoto] = []
    for photo in local:
        receipt = held.get(photo.sha256)
        if receipt is None:
            todo.append(photo)
            continue
        outcome.skipped.append(photo.path)
        if must_delete:
            _finish(
                server,
                config,
                photo,
                receipt,
                outcome,
                save,
                confirm=bool(receipt.get("deletion_expected")),
            )
    fields = [("school", school), ("caption", caption), ("purpose", purpose)]
    fields += [("accounts", a) for a in accounts]
    if publish_on:
        fields.append(("publish_on", publish_on))
    progress = Progress(sum(p.size for p in todo), out)
    for start in range(0, len(todo), per_post):
        batch = todo[start : start + per_post]
        answer, sent = server.upload(batch, fields, progress)
        outcome.posts.append(str(answer.get("post_id")))
        receipts = answer.get("receipts") or []
        for index, photo in enumerate(batch):
            receipt = receipts[index] if index < len(receipts) else {}
            outcome.uploaded.append(photo.path)
            if photo.path not in sent or not receipt_matches(photo, receipt):
                outcome.problems.append(
                    f"{photo.path}: the receipt does not match the file; kept"
                )
                outcome.kept.append(photo.path)
                continue
            if must_delete:
                _finish(
                    server,
                    config,
                    photo,
                    receipt,
                    outcome,
                    save,
                    confirm=bool(answer.get("delete_from_device")),
                )
            else:
                outcome.kept.append(photo.path)
    if todo:
        progress.finish()
    return outcome


def _finish(
    server: Server,
    config: DeviceConfig,
    photo: LocalPhoto,
    receipt: dict[str, Any],
    outcome: Outcome,
    save: Callable[[DeviceConfig], None] | None,
    *,
    confirm: bool,
) -> None:
    if not receipt_matches(photo, receipt):
        outcome.problems.append(f"{photo.path}: the receipt does not match; kept")
        outcome.kept.append(photo.path)
        return
    try:
        outcome.deleted.extend(delete_original(photo))
    except (UploaderError, OSError) as exc:
        outcome.problems.append(f"{photo.path}: not deleted: {exc}")
        outcome.kept.append(photo.path)
        return
    if not confirm:
        return
    item = {"receipt_id": str(receipt["receipt_id"]), "deleted_at": now_iso()}
    try:
        server.confirm(item["receipt_id"], item["deleted_at"])
        outcome.confirmed.append(item["receipt_id"])
    except UploaderError as exc:
        outcome.problems.append(f"confirmation of {photo.path.name} postponed: {exc}")
        outcome.unconfirmed.append(item["receipt_id"])
        config.pending_confirmations.append(item)
        if save is not None:
            save(config)


def _retry_confirmations(
    server: Server,
    config: DeviceConfig,
    outcome: Outcome,
    save: Callable[[DeviceConfig], None] | None,
) -> None:
    if not config.pending_confirmations:
        return
    left = []
    for item in config.pending_confirmations:
        try:
            server.confirm(item["receipt_id"], item["deleted_at"])
            outcome.confirmed.append(item["receipt_id"])
        except HttpError as exc:
            if exc.status == 404:  # nothing expected any more (IT resolved it)
                continue
            left.append(item)
        except UploaderError:
            left.append(item)
    config.pending_confirmations = left
    if save is not None:
        save(config)
