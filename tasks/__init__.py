"""Prefect tasks: thin wrappers that add names, retries and logging around emotrack's logic."""

from collections.abc import Callable
from typing import Any

from emotrack.storage import base_name


def named(stage: str) -> Callable[..., str]:
    """A task run name: the stage and the file name of the task's `uri` parameter."""

    def name(parameters: dict[str, Any]) -> str:
        return f"{stage} [{base_name(str(parameters['uri']))}]"

    return name
