"""The few exception types emotrack raises, and how the flow treats each kind of fault.

    classify(error)   what the run does
    "unreadable"      the input's fault (UnreadableVideo): recorded in `failures`, never retried
    "worker-died"     the video killed its Dask worker twice (distributed.KilledWorker):
                      recorded like an unreadable input (stage "analyse")
    "storage"         a permanent storage error (StorageError: no such bucket, access denied,
                      a full disk): the run stops at once
    "transient"       an I/O error (OSError) that a second try may not hit: the video is sent
                      again after a delay, a bounded number of times
    "unexpected"      anything else (a bug): logged with its traceback, nothing recorded, the
                      other videos go on and the run ends Failed

Storage clients retry their own transient faults (botocore's and delta-rs's back-off), so
a storage error that reaches the flow has outlived those retries.
"""

from __future__ import annotations

import errno
import re


class EmotrackError(Exception):
    """Base class of emotrack's own errors."""


class UnreadableVideo(EmotrackError):
    """A permanent problem with one input: recorded in `failures`, never retried.

    `stage` says where it was found (stage, probe, decode, analyse); the message says what
    to do.
    """

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(stage, message)  # both in args, so the error pickles
        self.stage = stage
        self.message = message

    def __str__(self) -> str:
        return f"{self.stage}: {self.message}"


class StorageError(EmotrackError, RuntimeError):
    """A permanent storage error (no such bucket, access denied): retrying cannot help."""


class AssetError(EmotrackError):
    """A pinned asset (weights, sample videos) could not be fetched or failed verification."""


def disk_full(error: BaseException, where: str) -> StorageError | None:
    """The StorageError that `error` means when it says the disk is full (ENOSPC, from Python
    or, as "os error 28", from delta-rs), naming `where`; None for any other error."""
    if not (
        (isinstance(error, OSError) and error.errno == errno.ENOSPC)
        or "No space left on device" in str(error)
    ):
        return None
    return StorageError(
        f"the disk is full under {where} (no space left on device): nothing of the batch being "
        "written is visible; free some space and run again (videos committed before stay done)"
    )


def storage_fault(error: BaseException, where: str) -> StorageError | None:
    """The StorageError that an error of a table write means, naming `where`: a full disk,
    or an object store that failed on every attempt of delta-rs's client ("Generic S3
    error ... after 5 retries"); None for any other error (a bug: schema, types)."""
    full = disk_full(error, where)
    if full is not None:
        return full
    if re.search(r"Generic \w+ error|after \d+ retries", str(error)):
        return kept_failing(where, error)
    return None


def kept_failing(where: str, error: BaseException) -> StorageError:
    """The StorageError of a request to object storage that failed on every attempt its
    client made (the client's retries are the one retry layer for storage)."""
    return StorageError(f"the object store kept failing for {where}: {error}")


def classify(error: BaseException) -> str:
    """The kind of fault `error` is (see the module's table)."""
    if isinstance(error, UnreadableVideo):
        return "unreadable"
    if type(error).__name__ == "KilledWorker":  # distributed's, not imported here
        return "worker-died"
    if isinstance(error, StorageError) or disk_full(error, "") is not None:
        return "storage"
    if isinstance(error, OSError):
        return "transient"
    return "unexpected"
