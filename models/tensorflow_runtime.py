"""Importing TensorFlow once, quietly, with the thread counts set before it initialises."""

from __future__ import annotations

import functools
import os
from types import ModuleType


@functools.cache
def import_tensorflow() -> ModuleType:
    """The tensorflow module; EMOTRACK_TF_THREADS (if set) caps its intra/inter-op threads.

    Models run on a GPU when TensorFlow sees one; its memory then grows as needed, so that
    several worker processes can share it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    threads = int(os.environ.get("EMOTRACK_TF_THREADS", "0"))
    if threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    return tf
