"""The few exception types the flow maps to 'record and move on' or 'retry'."""

from __future__ import annotations


class EmotrackError(Exception):
    """Base class of emotrack's own errors."""


class UnreadableVideo(EmotrackError):
    """A permanent problem with one input: recorded in `failures`, never retried.

    `stage` says where it was found (probe, decode); the message says what to do.
    """

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(stage, message)  # both in args, so the error pickles
        self.stage = stage
        self.message = message

    def __str__(self) -> str:
        return f"{self.stage}: {self.message}"


class AssetError(EmotrackError):
    """A pinned asset (weights, sample videos) could not be fetched or failed verification."""
