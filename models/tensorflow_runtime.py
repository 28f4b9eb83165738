"""The native runtimes (TensorFlow, LiteRT) of this process: how many threads they use and
whether they may talk, set once by the caller (configure) before the first model loads;
TensorFlow imported once, quietly, with those thread counts."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import IO


@dataclass
class Runtime:
    threads: int | None = None  # None: the runtime's own choice
    verbose: bool = False  # let the native runtimes print what they print on loading


RUNTIME = Runtime()


def configure(threads: int | None, verbose: bool) -> None:
    """This process's runtime settings; thread counts take effect for models loaded (and a
    TensorFlow imported) afterwards."""
    RUNTIME.threads, RUNTIME.verbose = threads, verbose


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while the block runs (not when verbose).

    TensorFlow's and LiteRT's C++ runtimes print on loading (oneDNN notes, "Could not find
    cuda drivers", cuInit errors on machines without a GPU, absl's preamble, the XNNPACK
    delegate) before any Python setting can reach them; TF_CPP_MIN_LOG_LEVEL does not stop
    all of it (tensorflow issue #100442). Errors raised as Python exceptions still surface.
    """
    if RUNTIME.verbose:
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


@contextlib.contextmanager
def captured_output() -> Iterator[IO[bytes]]:
    """File descriptors 1 and 2 into a temporary file while the block runs (not when
    verbose): what Python and the native runtimes print there, for the caller to show if it
    must. TensorFlow's converter prints the saved artifact's signatures with print() and its
    C++ side logs through absl; neither can be turned off."""
    with tempfile.TemporaryFile() as log:
        if RUNTIME.verbose:
            yield log
            return
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def nvidia_driver_loaded() -> bool:
    """Whether this machine has NVIDIA's driver loaded (a GPU TensorFlow may see)."""
    return os.path.exists("/proc/driver/nvidia/version")


@functools.cache
def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (asked only where NVIDIA's driver is loaded: importing
    TensorFlow takes seconds)."""
    if not nvidia_driver_loaded():
        return False
    return bool(import_tensorflow().config.list_physical_devices("GPU"))


@functools.cache
def import_tensorflow() -> ModuleType:
    """The tensorflow module, its intra/inter-op threads capped at RUNTIME.threads (if set).

    Models run on a GPU when TensorFlow sees one; its memory then grows as needed, so that
    several worker processes can share it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if RUNTIME.verbose else "2")
    with quiet_native_stderr():  # importing, and probing for GPUs (cuInit), is the loud part
        import tensorflow as tf

        if RUNTIME.threads:
            tf.config.threading.set_intra_op_parallelism_threads(RUNTIME.threads)
            tf.config.threading.set_inter_op_parallelism_threads(RUNTIME.threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    return tf
