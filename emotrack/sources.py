"""The archive's video files, on local disk or object storage: what a source holds, each
file's content id, and a local file that ffmpeg can decode.

A file is named by its URI: its absolute path on local disk, or its URL (s3://bucket/key).
Content ids are SHA-256 based (emotrack.video.content_video_id), whatever the store, so a
video copied from disk to a bucket keeps its id. A file is read to find its id only when it
is new or changed: the lake remembers each file's id with what identifies its bytes without
reading them (a local file's size, modification time and inode; an object's size and ETag),
as rsync and git do for local files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from emotrack.errors import UnreadableVideo
from emotrack.storage import ObjectStore, is_url
from emotrack.video import content_video_id, is_video_name


@dataclass(frozen=True)
class Found:
    """A video file of a source: its URI, size, and what tells a change without reading it
    (mtime and inode of a local file, the ETag of an object)."""

    uri: str
    size: int | None = None
    mtime_ns: int | None = None
    inode: int | None = None
    etag: str | None = None

    def same_as(self, recorded: dict[str, Any] | None) -> bool:
        """Whether the lake's record of this URI describes these very bytes."""
        if not recorded or recorded.get("size_bytes") != self.size:
            return False
        if is_url(self.uri):
            return self.etag is not None and recorded.get("etag") == self.etag
        return (recorded.get("mtime_ns"), recorded.get("inode")) == (self.mtime_ns, self.inode)


def find_sources(source: str) -> list[Found]:
    """The video files under `source` (a folder or an object-storage URL), sorted by URI:
    one listing, and for a folder one stat per file, never a read.

    Raises FileNotFoundError for a folder that does not exist, StorageError for a bucket
    that does not exist or cannot be read."""
    if not is_url(source):
        root = Path(source)
        if not root.is_dir():
            raise FileNotFoundError(f"video source {root} is not a directory")
        return sorted(_walk(root, root), key=lambda f: f.uri)
    store = ObjectStore(source)
    return [
        Found(f"{store.url}/{key}", facts["size"], etag=facts["etag"])
        for key, facts in sorted(store.info("").items())
        if is_video_name(key)
    ]


def _walk(root: Path, folder: Path) -> Iterator[Found]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                yield from _walk(root, Path(entry.path))
            elif entry.is_file(follow_symlinks=True) and is_video_name(entry.name):
                facts = entry.stat(follow_symlinks=True)
                yield Found(
                    str(Path(entry.path).resolve()),
                    facts.st_size,
                    facts.st_mtime_ns,
                    facts.st_ino,
                )


def content_ids(
    found: list[Found], recorded: dict[str, dict[str, Any]], rehash: bool = False
) -> tuple[dict[str, str | None], list[Found]]:
    """Each file's content id, and the local files that had to be read for it.

    An id recorded for the same bytes (Found.same_as) is reused; other local files are
    hashed (several at a time), all of them with rehash. An object's id stays None until its
    copy is read (emotrack.units); an unreadable local file's too."""
    ids: dict[str, str | None] = {}
    to_read = []
    for f in found:
        entry = recorded.get(f.uri)
        if f.same_as(entry) and not (rehash and not is_url(f.uri)):
            ids[f.uri] = str(entry["video_id"])  # type: ignore[index]
        elif is_url(f.uri):
            ids[f.uri] = None
        else:
            to_read.append(f)
    with ThreadPoolExecutor(4) as pool:  # hashlib releases the GIL: reads overlap
        for f, video_id in zip(to_read, pool.map(_local_id, to_read), strict=True):
            ids[f.uri] = video_id
    return ids, [f for f in to_read if ids[f.uri] is not None]


def _local_id(found: Found) -> str | None:
    try:
        return content_video_id(Path(found.uri))
    except OSError:
        return None


def source_rows(files: list[tuple[Found, str]]) -> pd.DataFrame:
    """_sources rows: what the lake records of each (file, its content id)."""
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "uri": [f.uri for f, _ in files],
            "size_bytes": pd.array([f.size for f, _ in files], "Int64"),
            "mtime_ns": pd.array([f.mtime_ns for f, _ in files], "Int64"),
            "inode": pd.array([f.inode for f, _ in files], "Int64"),
            "etag": [f.etag for f, _ in files],
            "video_id": [video_id for _, video_id in files],
            "recorded_at": [now] * len(files),
        }
    )


def unread_id(found: Found) -> str:
    """The id of an object whose content was never read (too large to copy): 'u' + a hash of
    its URI, size and ETag. It is recorded with its failure, so the object stays quarantined
    until it changes, without being read."""
    key = f"{found.uri}\n{found.size}\n{found.etag}".encode()
    return "u" + hashlib.sha256(key).hexdigest()[:16]


@contextmanager
def local_file(uri: str, max_bytes: int, folder: Path | None = None) -> Iterator[Path]:
    """A local file holding the video `uri`: the file itself, or for an object a temporary
    copy in `folder`, deleted when the block ends. An object over max_bytes is not copied:
    UnreadableVideo (stage "stage")."""
    if not is_url(uri):
        yield Path(uri)
        return
    parent, key = uri.rsplit("/", 1)
    store = ObjectStore(parent)
    size = store.size(key)
    if size > max_bytes:
        raise UnreadableVideo(
            "stage",
            f"not copied: {size} bytes, over the limit of {max_bytes} (EMOTRACK_MAX_STAGED_BYTES)",
        )
    with store.local_copy(key, folder) as path:
        yield path
