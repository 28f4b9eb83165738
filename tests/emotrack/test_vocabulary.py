import numpy as np
from emotrack.models.expression_cnn import CLASSES

from emotrack.vocabulary import CIRCUMPLEX, EMOTIONS, softmax


def test_softmax_rows_sum_to_one_and_keep_the_order() -> None:
    p = softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0].argmax() == 2 and p[1].argmax() == 0


def test_circumplex_places_happy_positive_and_sad_negative() -> None:
    table = dict(zip(EMOTIONS, CIRCUMPLEX, strict=True))
    assert table["happy"][0] > 0.9 and table["sad"][0] < -0.8
    assert table["angry"][1] > table["neutral"][1]
    assert np.all(np.abs(CIRCUMPLEX) <= 1)


def test_the_cnn_has_one_output_per_expression() -> None:
    assert len(EMOTIONS) == CLASSES == len(set(EMOTIONS))
