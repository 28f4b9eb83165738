"""Importing TensorFlow once, quietly, with the thread counts set before it initialises."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from types import ModuleType


def verbose() -> bool:
    """Whether the native runtimes may talk: EMOTRACK_LOG_LEVEL=DEBUG (`emotrack -v`)."""
    return os.environ.get("EMOTRACK_LOG_LEVEL", "").upper() == "DEBUG"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while the block runs (not with verbose()).

    TensorFlow's and LiteRT's C++ runtimes print on loading (oneDNN notes, "Could not find
    cuda drivers", cuInit errors on machines without a GPU, absl's preamble, the XNNPACK
    delegate) before any Python setting can reach them; TF_CPP_MIN_LOG_LEVEL does not stop
    all of it (tensorflow issue #100442). Errors raised as Python exceptions still surface.
    """
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def import_tensorflow() -> ModuleType:
    """The tensorflow module; EMOTRACK_TF_THREADS (if set) caps its intra/inter-op threads.

    Models run on a GPU when TensorFlow sees one; its memory then grows as needed, so that
    several worker processes can share it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "2")
    with quiet_native_stderr():  # importing, and probing for GPUs (cuInit), is the loud part
        import tensorflow as tf

        threads = int(os.environ.get("EMOTRACK_TF_THREADS", "0"))
        if threads > 0:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    return tf
