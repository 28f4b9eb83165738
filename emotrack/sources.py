"""The archive's video files, on local disk or object storage: what a source holds, each
file's content id, and a local file that ffmpeg can decode.

A file is named by its URI: its absolute path on local disk, or its URL (s3://bucket/key).
Content ids are SHA-256 based (emotrack.video.content_video_id), whatever the store, so a
video copied from disk to a bucket keeps its id. On object storage a file is read only when
it is new or changed: the lake remembers each object's id with its size and ETag
(Lake.remember_source).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from emotrack.errors import UnreadableVideo
from emotrack.storage import ObjectStore, is_url
from emotrack.video import content_video_id, find_videos, is_video_name


@dataclass(frozen=True)
class Found:
    """A video file of a source: its URI and, on object storage, its size and ETag."""

    uri: str
    size: int | None = None
    etag: str | None = None


def find_sources(source: str) -> list[Found]:
    """The video files under `source` (a folder or an object-storage URL), sorted by URI.

    Raises FileNotFoundError for a folder that does not exist, StorageError for a bucket
    that does not exist or cannot be read."""
    if not is_url(source):
        return [Found(str(path)) for path in find_videos(Path(source))]
    store = ObjectStore(source)
    return [
        Found(f"{store.url}/{key}", facts["size"], facts["etag"])
        for key, facts in sorted(store.info("").items())
        if is_video_name(key)
    ]


def known_content_id(found: Found, remembered: dict[str, dict[str, object]]) -> str | None:
    """The file's content id if it can be had without copying it: read from a local file,
    or remembered for an object of the same size and ETag. None: to read when staged (or
    unreadable)."""
    if not is_url(found.uri):
        try:
            return content_video_id(Path(found.uri))
        except OSError:
            return None
    entry = remembered.get(found.uri)
    if entry and entry.get("size") == found.size and entry.get("etag") == found.etag:
        return str(entry["video_id"])
    return None


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
            "stage", f"not copied: {size} bytes, over the limit of {max_bytes} "
            "(EMOTRACK_MAX_STAGED_BYTES)",
        )  # fmt: skip
    with store.local_copy(key, folder) as path:
        yield path
