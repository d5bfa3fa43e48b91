"""Folder target: each post becomes ``<root>/<school>/<account>/<post-id>/`` (its
images, ``caption.txt`` and ``post.json``), e.g. for a share the school's website
reads.

The location is **built** from the root (a setting) and the account's school slug
and id, never taken from a configured path: ``Destination.external_id`` is
``"<school>/<account>"`` (``folder_external_id`` makes it), checked against a strict
pattern, its account part must be the destination's account, its school part the
``school_id`` in ``Destination.settings`` when given, and the resolved folder must lie
inside the root (so ``..`` or a symlink cannot lead out). A post appears whole or not
at all: it is written and fsynced in a ``.tmp-*`` folder beside its final place, then
renamed. A temp folder left by a killed writer is removed by the next publish to that
account once it is a minute old.

The post's folder name is the ``idempotency_key`` (the post id) the caller gives, so
publishing the same post twice finds the first folder and writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.publishing.platforms.base import (
    Destination,
    LivePost,
    Media,
    PermanentError,
    RecentPost,
    TransientError,
)

EXTERNAL_ID = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")  # a post or photo id
TEMP_PREFIX = ".tmp-"
STALE_SECONDS = 60.0
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}


def folder_external_id(school_id: str, account_id: str) -> str:
    """The ``external_id`` of a folder account: built, then checked."""
    external_id = f"{school_id}/{account_id}"
    if not EXTERNAL_ID.match(external_id) or ".." in external_id:
        raise ValueError("school or account id is not usable as a folder name")
    return external_id


class FolderAdapter:
    platform = "folder"

    def __init__(
        self,
        root: Path,
        *,
        clock: Callable[[], float] = time.time,
        stale_seconds: float = STALE_SECONDS,
    ):
        self.root = Path(root)
        self.clock = clock
        self.stale_seconds = stale_seconds

    def publish(
        self,
        dest: Destination,
        caption: str,
        media: Sequence[Media],
        *,
        idempotency_key: str | None = None,
    ) -> LivePost:
        """Write the post's folder, named ``idempotency_key`` (required here)."""
        post_id = _post_id(idempotency_key)
        names = _file_names(media)
        base = self._account_folder(dest, create=True)
        self._clean_stale(base)
        final = base / post_id
        if (final / "post.json").is_file():
            return _live(final)  # an earlier attempt finished
        try:
            tmp = Path(tempfile.mkdtemp(dir=base, prefix=f"{TEMP_PREFIX}{post_id}-"))
            files = zip(names, media, strict=True)
            try:
                _write_post(tmp, dest, post_id, caption, files, self._now())
                os.rename(tmp, final)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not (final / "post.json").is_file():  # not a concurrent winner
                    raise
            _fsync_dir(base)
        except OSError as exc:
            raise TransientError(
                f"the post could not be written to its folder ({exc.strerror})",
                code="io_error",
            ) from None
        return _live(final)

    def delete(self, dest: Destination, external_id: str) -> None:
        """Remove the post's folder (renamed aside first, so it vanishes at once);
        a folder already gone counts as deleted."""
        folder = self._account_folder(dest) / _post_id(external_id)
        if not folder.is_dir():
            return
        aside = folder.with_name(f"{TEMP_PREFIX}deleted-{folder.name}-{os.getpid()}")
        try:
            os.rename(folder, aside)
            _fsync_dir(folder.parent)
        except FileNotFoundError:
            return  # deleted concurrently
        except OSError as exc:
            raise TransientError(
                f"the post's folder could not be removed ({exc.strerror})",
                code="io_error",
            ) from None
        shutil.rmtree(aside, ignore_errors=True)  # leftovers: cleaned when stale

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        folder = self._account_folder(dest) / _post_id(external_id)
        return _live(folder) if (folder / "post.json").is_file() else None

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The account's posts published since ``since``, newest first. Every post
        folder of the account is read (a directory listing has no pages), so the
        list is complete however many posts there are."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        found = [p for p in self._posts(dest) if p.created_at and p.created_at >= since]
        return sorted(found, key=lambda p: p.created_at or since, reverse=True)

    # -- the account's folder -----------------------------------------------------

    def _account_folder(self, dest: Destination, *, create: bool = False) -> Path:
        school, account = _location(dest)
        root = self.root.resolve()
        folder = root / school / account
        _inside(folder, root)  # before making anything: no symlink leads out
        if create:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TransientError(
                    f"the account's folder could not be made ({exc.strerror})",
                    code="io_error",
                ) from None
            _inside(folder, root)
        return folder

    def _clean_stale(self, base: Path) -> None:
        cutoff = self.clock() - self.stale_seconds
        for entry in base.glob(f"{TEMP_PREFIX}*"):
            try:
                stale = entry.lstat().st_mtime < cutoff
                if stale and entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
            except FileNotFoundError:
                continue  # another writer finished or cleaned it

    def _posts(self, dest: Destination) -> Iterator[RecentPost]:
        base = self._account_folder(dest)
        if not base.is_dir():
            return
        for folder in base.iterdir():
            if folder.name.startswith(".") or not NAME.match(folder.name):
                continue
            post = _read(folder)
            if post is not None:
                yield post

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _inside(folder: Path, root: Path) -> None:
    resolved = folder.resolve()
    if resolved != folder or not resolved.is_relative_to(root):
        raise PermanentError(
            "the account's folder leads outside the publishing root",
            code="bad_location",
        )


def _location(dest: Destination) -> tuple[str, str]:
    external_id = dest.external_id
    if not EXTERNAL_ID.match(external_id) or ".." in external_id:
        raise PermanentError(
            "the folder account's location is not <school>/<account>",
            code="bad_location",
        )
    school, account = external_id.split("/")
    expected_school = dest.settings.get("school_id")
    if account != dest.account_id or (
        expected_school is not None and school != expected_school
    ):
        raise PermanentError(
            "the folder account's location names another school or account",
            code="bad_location",
        )
    return school, account


def _post_id(value: str | None) -> str:
    if value is None:
        raise PermanentError(
            "a folder post needs its post id (idempotency_key)", code="no_post_id"
        )
    if not NAME.match(value) or ".." in value:
        raise PermanentError("not a usable post id for a folder", code="bad_post_id")
    return value


def _file_names(media: Sequence[Media]) -> list[str]:
    """Each image's file name: its number and photo id (or hash), typed by its
    content type; a type a folder does not take is refused before anything is
    written."""
    names = []
    for number, image in enumerate(media, start=1):
        extension = EXTENSIONS.get(image.content_type)
        if extension is None:
            raise PermanentError(
                f"photo {number} is not an image type a folder takes",
                code="unsupported_format",
            )
        stem = image.photo_id if NAME.match(image.photo_id) else image.sha256[:16]
        names.append(f"{number:02d}-{stem}{extension}")
    return names


def _write_post(
    folder: Path,
    dest: Destination,
    post_id: str,
    caption: str,
    files: Iterable[tuple[str, Media]],
    now: datetime,
) -> None:
    images = []
    for name, image in files:
        _write(folder / name, image.data)
        images.append(
            {
                "file": name,
                "photo_id": image.photo_id,
                "sha256": image.sha256,
                "content_type": image.content_type,
            }
        )
    _write(folder / "caption.txt", caption.encode())
    school, account = dest.external_id.split("/")
    record = {
        "post_id": post_id,
        "school": school,
        "account": account,
        "images": images,
        "published_at": now.isoformat(),
    }
    _write(folder / "post.json", json.dumps(record, indent=2).encode())
    _fsync_dir(folder)


def _read(folder: Path) -> RecentPost | None:
    """The post a folder holds; None for one that is not a complete post."""
    try:
        record: Any = json.loads((folder / "post.json").read_text())
        caption = (folder / "caption.txt").read_text()
        created = datetime.fromisoformat(record["published_at"])
        count = len(record["images"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    live = _live(folder)
    return RecentPost(live.external_id, live.url, caption, count, created)


def _live(folder: Path) -> LivePost:
    return LivePost(external_id=folder.name, url=folder.as_uri())


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
