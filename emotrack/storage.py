"""Where files live: a folder on local disk or a prefix in object storage (S3 and any other
fsspec URL), behind one small interface. The lake and the video sources go through it.

Keys are POSIX paths relative to the store's root ("_report/index.html"). The lake's tables
are Delta tables written by delta-rs, which talks to the store itself: `table_uri` and
`table_options` say where and how. For the store's own files, what "atomic" means differs,
and is kept here:

- local disk: a file is written under a hidden temporary name, then renamed into place;
- object storage: a PUT is never partial, so each object is written whole under its final
  key (no rename exists). Objects are built in memory first, so a failed write leaves
  nothing behind.

Object stores are reached through fsspec (s3fs for s3://). Credentials and the endpoint
come from the standard variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_PROFILE, ...). Transient errors (HTTP 500, 503,
throttling, a reset connection) are retried with exponential back-off by the storage
client, and only there: botocore's "standard" retry mode for our own requests (s3fs's own
retry loop is turned off), object_store's for delta-rs's, S3_ATTEMPTS attempts in all
either way. Permanent errors (403, no such bucket), and transient ones that outlived those
attempts, raise StorageError: the run stops, nothing above sends the request again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import Any

from emotrack.errors import StorageError, disk_full, kept_failing
from emotrack.settings import s3_encryption, s3_endpoint

# botocore's standard retry mode: 500/502/503/504, throttling and connection errors, with
# exponential back-off and jitter, up to this many attempts in all.
S3_ATTEMPTS = 6
LOCK_KEY = "_lock"
_log = logging.getLogger(__name__)


def is_url(location: str | Path) -> bool:
    """Whether `location` names object storage (s3://..., gs://...) rather than a local path."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def location(text: str | Path) -> str:
    """A store's location as runs record it: a URL as given, a local path made absolute."""
    return str(text).rstrip("/") if is_url(text) else str(Path(text).resolve())


def base_name(uri: str) -> str:
    """The file name at the end of a local path or a URL."""
    return PurePosixPath(uri).name


def open_store(where: str | Path) -> LocalStore | ObjectStore:
    return ObjectStore(str(where)) if is_url(where) else LocalStore(Path(where))


class LocalStore:
    """A folder on local disk."""

    local = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def table_uri(self, key: str) -> str:
        """Where delta-rs finds the table `key` (a folder)."""
        return str(self.root / key)

    def table_options(self) -> dict[str, str] | None:
        return None

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write the file `key` whole: a hidden temporary file, renamed into place."""
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, final)
        except OSError as error:
            raise disk_full(error, str(final.parent)) or error from error
        finally:
            tmp.unlink(missing_ok=True)

    def write_many(self, files: dict[str, bytes]) -> None:
        """Several files, each written whole."""
        for key, data in files.items():
            self.write_bytes(key, data)

    def write_file(self, key: str, source: Path) -> None:
        """Copy the local file `source` to `key`, whole (a hidden temporary file, renamed)."""
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, final)
        except OSError as error:
            raise disk_full(error, str(final.parent)) or error from error
        finally:
            tmp.unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        return {key: self.read_bytes(key) for key in keys}

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        """Delete the file `key`, and its folder if that leaves it empty (as on object
        storage, where a folder is only a prefix)."""
        path = self.path(key)
        path.unlink(missing_ok=True)
        if path.parent != self.root:
            with suppress(OSError):  # not empty: others still there
                path.parent.rmdir()

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def keys(self, prefix: str) -> list[str]:
        """Keys of the files under `prefix` (recursively; hidden temporary files skipped)."""
        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    @contextmanager
    def lock(self, timeout_s: float | None = None, ttl_s: float = 120.0) -> Iterator[None]:
        """An flock on ROOT/_lock, released by the kernel if the process dies (no expiry:
        ttl_s is for object storage)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.path(LOCK_KEY).open("a") as handle:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"another run holds {self.path(LOCK_KEY)}") from None
                    time.sleep(0.5)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class ObjectStore:
    """A prefix in object storage, through fsspec (s3fs for s3://)."""

    local = False

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        protocol = self.url.split("://", 1)[0]
        options: dict[str, Any] = {"use_listings_cache": False}  # other processes write too
        if protocol in ("s3", "s3a"):
            options["config_kwargs"] = {
                # total_max_attempts: botocore's max_attempts counts retries, not attempts
                "retries": {"total_max_attempts": S3_ATTEMPTS, "mode": "standard"}
            }
            # botocore reads it too; named here, it is part of fsspec's instance cache key
            options["endpoint_url"] = s3_endpoint()
            encryption = s3_encryption()
            if encryption is not None:
                kind, key = encryption
                extra = {"ServerSideEncryption": kind} | ({"SSEKMSKeyId": key} if key else {})
                options["s3_additional_kwargs"] = extra
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.root = self.root.rstrip("/")
        if protocol in ("s3", "s3a"):
            self.fs.retries = 1  # s3fs's own loop: one try; botocore's retries are the layer

    def check(self) -> None:
        """Raise StorageError now if the bucket does not exist or cannot be read."""
        with self._errors(""):
            self.fs.ls(self.root.split("/", 1)[0])

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def table_uri(self, key: str) -> str:
        """Where delta-rs finds the table `key` (a prefix)."""
        return f"{self.url}/{key}"

    def table_options(self) -> dict[str, str] | None:
        """delta-rs reads the AWS_* variables itself (it retries transient errors with
        back-off, S3_ATTEMPTS attempts in all, and commits with conditional PUTs); an
        http:// endpoint (MinIO, moto) must be allowed explicitly, and server-side
        encryption (s3_encryption) given as object_store's options."""
        options = {"max_retries": str(S3_ATTEMPTS - 1)}  # object_store's retries: the layer
        if (s3_endpoint() or "").startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
        encryption = s3_encryption() if self.url.split("://", 1)[0] in ("s3", "s3a") else None
        if encryption is not None:
            options["aws_server_side_encryption"] = encryption[0]
            if encryption[1]:
                options["aws_sse_kms_key_id"] = encryption[1]
        return options

    def write_bytes(self, key: str, data: bytes, **conditions: Any) -> None:
        """Write the object `key` whole, in one PUT (with conditions: S3's IfMatch, or
        mode="create" for If-None-Match)."""
        with self._errors(key):
            self.fs.pipe_file(self._full(key), data, **conditions)

    def write_file(self, key: str, source: Path) -> None:
        """Upload the local file `source` to `key` (in parts when it is large: an object
        appears only once whole)."""
        with self._errors(key):
            self.fs.put_file(str(source), self._full(key))

    def write_many(self, files: dict[str, bytes]) -> None:
        """Several objects, each in one PUT, sent concurrently."""
        if files:
            with self._errors(next(iter(files))):
                self.fs.pipe({self._full(k): data for k, data in files.items()})

    def read_bytes(self, key: str) -> bytes:
        with self._errors(key):
            return bytes(self.fs.cat_file(self._full(key)))

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Several objects at once (fetched concurrently)."""
        if not keys:
            return {}
        with self._errors(keys[0]):
            found = self.fs.cat([self._full(k) for k in keys], on_error="omit")
        offset = len(self.root) + 1
        return {path[offset:]: bytes(data) for path, data in found.items()}

    def exists(self, key: str) -> bool:
        with self._errors(key):
            return bool(self.fs.isfile(self._full(key)))

    def delete(self, key: str) -> None:
        with self._errors(key), suppress(FileNotFoundError):
            self.fs.rm_file(self._full(key))

    def delete_tree(self, prefix: str) -> None:
        keys = self.keys(prefix)
        if keys:
            with self._errors(prefix):
                self.fs.rm([self._full(k) for k in keys])

    def keys(self, prefix: str) -> list[str]:
        with self._errors(prefix):
            try:
                found = self.fs.find(self._full(prefix))
            except FileNotFoundError:
                return []
        offset = len(self.root) + 1
        return sorted(path[offset:] for path in found)

    def info(self, prefix: str) -> dict[str, dict[str, Any]]:
        """key -> size and etag of each object under `prefix` (one listing)."""
        with self._errors(prefix):
            try:
                found = self.fs.find(self._full(prefix), detail=True)
            except FileNotFoundError:
                return {}
        offset = len(self.root) + 1
        return {
            path[offset:]: {"size": int(entry.get("size") or 0), "etag": _etag(entry)}
            for path, entry in found.items()
            if entry.get("type") != "directory"
        }

    def size(self, key: str) -> int:
        with self._errors(key):
            return int(self.fs.info(self._full(key))["size"])

    @contextmanager
    def local_copy(self, key: str, folder: Path | None = None) -> Iterator[Path]:
        """The object, downloaded into a temporary file in `folder` (None: the system's
        temporary folder) that is deleted when the block ends."""
        suffix = PurePosixPath(key).suffix
        with tempfile.TemporaryDirectory(prefix="emotrack-staged-", dir=folder) as tmp:
            path = Path(tmp) / f"video{suffix}"
            with self._errors(key):
                self.fs.get_file(self._full(key), str(path))
            yield path

    @contextmanager
    def lock(self, timeout_s: float | None = None, ttl_s: float = 120.0) -> Iterator[None]:
        """Hold the lock object ROOT/_lock: an owner and an expiry (ttl_s), renewed while held.

        It is created only if absent (a conditional PUT, If-None-Match), so two runs cannot
        both create it; a lock past its expiry (its run died) is taken over with a PUT
        conditional on its ETag (If-Match). Its holder renews it every third of the TTL, and
        only while it is still the owner; a lock lost meanwhile (renewals failed for a whole
        TTL and another run took it over) is logged as an error.
        """
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._try_lock(owner, ttl_s):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"another run holds {self.url}/{LOCK_KEY}")
            time.sleep(min(2.0, ttl_s / 4))
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(ttl_s / 3):
                try:
                    body, etag = self._lock_state()
                    if body.get("owner") != owner:
                        _log.error("lost the lock of %s to %s", self.url, body.get("owner"))
                        return
                    self.write_bytes(LOCK_KEY, _lock_body(owner, ttl_s), IfMatch=etag)
                except Exception as error:  # noqa: BLE001 - tried again at the next beat
                    _log.warning("could not renew the lock of %s: %s", self.url, error)

        beat = threading.Thread(target=renew, name="emotrack-lock", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            body, _ = self._lock_state()
            if body.get("owner") == owner:
                self.delete(LOCK_KEY)

    def _try_lock(self, owner: str, ttl: float) -> bool:
        try:
            self.write_bytes(LOCK_KEY, _lock_body(owner, ttl), mode="create")
            return True
        except FileExistsError:
            pass
        body, etag = self._lock_state()
        if etag is None or float(body.get("expires_at", 0)) > time.time():
            return False
        try:  # expired: its run died; take it over unless someone else just did
            self.write_bytes(LOCK_KEY, _lock_body(owner, ttl), IfMatch=etag)
        except (OSError, StorageError):
            return False
        return True

    def _lock_state(self) -> tuple[dict[str, Any], str | None]:
        """The lock's body and ETag (({}, None) if there is none)."""
        with self._errors(LOCK_KEY):
            try:
                info = self.fs.info(self._full(LOCK_KEY))
                body = json.loads(self.fs.cat_file(self._full(LOCK_KEY)))
            except FileNotFoundError:
                return {}, None
        return body, _etag(info)

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Errors the client's retries did not overcome as StorageError, with what to check;
        a missing object (FileNotFoundError) and one that exists already (FileExistsError,
        a conditional PUT) are answers, raised as they are."""
        try:
            yield
        except FileNotFoundError as error:
            if "bucket" in str(error).lower():
                raise StorageError(
                    f"no such bucket for {self.url} ({error}): check the URL and AWS_ENDPOINT_URL"
                ) from None
            raise
        except FileExistsError:
            raise
        except OSError as error:
            if isinstance(error, PermissionError) or "Forbidden" in str(error):
                raise StorageError(  # a HEAD's 403 has no error code: "Forbidden" is all it says
                    f"access denied to {self.url}/{key} ({error}): check AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and the bucket's policy"
                ) from None
            raise kept_failing(f"{self.url}/{key}", error) from error


def _etag(entry: dict[str, Any]) -> str | None:
    etag = entry.get("ETag") or entry.get("etag")
    return str(etag) if etag else None


def _lock_body(owner: str, ttl: float) -> bytes:
    return json.dumps({"owner": owner, "expires_at": time.time() + ttl}).encode()
