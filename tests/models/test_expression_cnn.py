import cv2
import numpy as np
import pytest
from emotrack.models.expression_cnn import (
    LiteCNN,
    load_expression_cnn,
    load_expression_features,
    predict_features,
)
from emotrack.models.face_detector import detect_faces

from emotrack.analysis import load_detector
from emotrack.assets import expression_cnn_path
from emotrack.faces import crop_face, faces_from_boxes
from emotrack.vocabulary import EMOTIONS, softmax


@pytest.fixture(scope="module", params=["keras", "litert"])
def cnn(request, settings):
    """The network under both runtimes: Keras (GPU machines) and LiteRT (the CPU's)."""
    path = expression_cnn_path(settings.cache_dir)
    if request.param == "keras":
        return load_expression_cnn(path)
    model = load_expression_features(path)
    assert isinstance(model, LiteCNN)  # this machine has no GPU
    return model


def _face_crops(path, settings) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    found = detect_faces(load_detector(settings), [image])[0]
    faces = faces_from_boxes(found, settings.min_face_px)
    assert len(faces) == 1, faces
    return np.stack([crop_face(image, faces[0])])


def test_a_smiling_real_face_is_classified_happy(cnn, asset, settings) -> None:
    logits, embedding = predict_features(cnn, _face_crops(asset("happy_face.jpg"), settings))
    probs = softmax(logits.astype(np.float64))
    assert EMOTIONS[int(probs[0].argmax())] == "happy"
    assert probs[0, EMOTIONS.index("happy")] > 0.8
    assert embedding.shape == (1, 128) and np.isfinite(embedding).all()


def test_logits_are_the_networks_own_pre_softmax_outputs(cnn, asset, settings) -> None:
    import keras

    original = keras.models.load_model(str(expression_cnn_path(settings.cache_dir)), compile=False)
    faces = _face_crops(asset("single_face.jpg"), settings)
    assert original.input_shape == (None, 64, 64, 1)  # the model's documented input
    logits, _ = predict_features(cnn, faces)
    np.testing.assert_allclose(
        softmax(logits.astype(np.float64)), original.predict(faces, verbose=0), atol=1e-5
    )


def test_preprocessing_is_gray_64px_scaled_to_plus_minus_one(asset, settings) -> None:
    crops = _face_crops(asset("single_face.jpg"), settings)
    assert crops.shape == (1, 64, 64, 1) and crops.dtype == np.float32
    assert crops.min() >= -1.0 and crops.max() <= 1.0 and crops.max() - crops.min() > 1.0


def test_batches_give_the_same_features_as_single_faces(cnn, asset, settings) -> None:
    face = _face_crops(asset("happy_face.jpg"), settings)
    flipped = face[:, :, ::-1]
    batch = np.concatenate([face, flipped] * 40)  # 80 faces: goes through predict()
    logits, _ = predict_features(cnn, batch)
    single, _ = predict_features(cnn, face)
    np.testing.assert_allclose(logits[0], single[0], atol=1e-4)
    np.testing.assert_allclose(logits[::2], np.repeat(single, 40, axis=0), atol=1e-4)


def test_the_litert_conversion_gives_kerass_logits_and_embeddings(asset, settings) -> None:
    path = expression_cnn_path(settings.cache_dir)
    faces = np.concatenate(
        [_face_crops(asset(name), settings) for name in ("happy_face.jpg", "angry_face.jpg")]
    )
    keras_logits, keras_embedding = predict_features(load_expression_cnn(path), faces)
    lite_logits, lite_embedding = predict_features(load_expression_features(path), faces)
    np.testing.assert_allclose(lite_logits, keras_logits, atol=1e-4)
    np.testing.assert_allclose(lite_embedding, keras_embedding, atol=1e-4)
    assert list(path.parent.glob(f"{path.name}.*.tflite"))  # kept for the next process
