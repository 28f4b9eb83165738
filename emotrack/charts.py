"""The report's plots, as inline SVG (no JavaScript, CSS or fonts from elsewhere): a face
track's expression probabilities, valence/arousal/intensity, head pose, blendshapes and
action units over time, and the index's valence sparkline. Each takes rows of `tracks` (one
face track) and the video's end in seconds, and returns the SVG's markup; a series is
averaged into at most MAX_POINTS points, so that a page stays small."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from emotrack.action_units import AU_COLUMNS
from emotrack.models.face_landmarker import BLENDSHAPE_COLUMNS, POSE_COLUMNS
from emotrack.schema import PROB_COLUMNS
from emotrack.vocabulary import EMOTIONS

MAX_POINTS = 400
POSE_COLOURS = ("#1f77b4", "#d62728", "#9467bd")  # yaw, pitch, roll
SHAPE_COLOURS = ("#e377c2", "#17becf", "#bcbd22", "#8c564b", "#7f7f7f")
COLOURS = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#f2b701",
    "sad": "#1f77b4",
    "surprise": "#17becf",
    "neutral": "#c7c7c7",
}


def stacked_chart(track: pd.DataFrame, end: float, width: int = 900, height: int = 120) -> str:
    """The 7 probabilities over time as a stacked area."""
    t, probs = _binned(track, PROB_COLUMNS, end)
    x = t / end * width
    paths, below = [], np.zeros(len(t))
    for i, emotion in enumerate(EMOTIONS):
        above = below + probs[:, i]
        top = " ".join(f"{a:.1f},{height - b * height:.1f}" for a, b in zip(x, above, strict=True))
        bottom = " ".join(
            f"{a:.1f},{height - b * height:.1f}" for a, b in zip(x[::-1], below[::-1], strict=True)
        )
        paths.append(f'<polygon points="{top} {bottom}" fill="{COLOURS[emotion]}"/>')
        below = above
    ticks = [(height * (1 - p), f"{p:g}") for p in (0, 0.5, 1)]
    return _chart(
        width,
        height,
        "".join(paths),
        "expression probabilities, stacked",
        end,
        "probability",
        ticks,
    )


def affect_chart(
    track: pd.DataFrame, episodes: pd.DataFrame, end: float, width: int = 900, height: int = 100
) -> str:
    """Valence and arousal in [-1, 1] and intensity in [0, 1], over the episodes' bands."""
    t, values = _binned(track, ["valence", "arousal", "intensity"], end)
    x = t / end * width
    bands = "".join(
        f'<rect x="{e.start_s / end * width:.1f}" y="0" height="{height}" '
        f'width="{max((e.end_s - e.start_s) / end * width, 1):.1f}" '
        f'fill="{COLOURS.get(e.emotion, "#ccc")}" opacity="0.35"/>'
        for e in episodes.itertuples()
    )
    v, a, i = values.T  # intensity's 0..1 drawn on the same -1..1 scale as the others
    series = [
        _polylines(x, _scaled(y, -1, 1, height), c)
        for y, c in ((v, "#2ca02c"), (a, "#ff7f0e"), (i * 2 - 1, "#555"))
    ]
    axis = f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#bbb"/>'
    title = "valence (green), arousal (orange), intensity (grey, 0 at -1); episodes as bands"
    ticks = [(_scaled(np.array([y]), -1, 1, height)[0], _signed(y)) for y in (-1, 0, 1)]
    chart = _chart(
        width, height, bands + axis + "".join(series), title, end, "valence, arousal", ticks
    )
    legend = "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{name}</span>'
        for name, c in (
            ("valence", "#2ca02c"),
            ("arousal", "#ff7f0e"),
            ("intensity (0 at -1, 1 at +1)", "#555"),
        )
    )
    return f'{chart}<p class="legend">{legend}; bands: the episodes</p>'


def pose_chart(track: pd.DataFrame, end: float, width: int = 900, height: int = 100) -> str:
    """Yaw, pitch and roll in degrees (clipped to +-90), gaps where the face was not fitted."""
    t, values = _binned(track, POSE_COLUMNS, end)
    x = t / end * width
    series = [
        _polylines(x, _scaled(np.clip(values[:, k], -90, 90), -90, 90, height), c)
        for k, c in enumerate(POSE_COLOURS)
    ]
    axis = f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#bbb"/>'
    ticks = [
        (_scaled(np.array([d]), -90, 90, height)[0], _signed(d)) for d in (-90, -45, 0, 45, 90)
    ]
    chart = _chart(
        width,
        height,
        axis + "".join(series),
        "head pose: yaw (blue), pitch (red), roll (purple)",
        end,
        "degrees",
        ticks,
    )
    legend = "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{name}</span>'
        for name, c in zip(
            (
                "yaw (> 0: facing the image's right)",
                "pitch (> 0: up)",
                "roll (> 0: leaning clockwise)",
            ),
            POSE_COLOURS,
            strict=True,
        )
    )
    return f'{chart}<p class="legend">head pose: {legend}</p>'


def _signed(value: float) -> str:
    return f"{value:+g}" if value else "0"


def blendshape_chart(track: pd.DataFrame, end: float, width: int = 900, height: int = 100) -> str:
    """The blendshapes that moved most over the track (largest 5-95 % range), and a legend."""
    names = {column: column[3:] for column in BLENDSHAPE_COLUMNS[1:]}  # not _neutral
    return _moved_most(track, names, "blendshapes", "score", end, width, height)


def action_unit_chart(track: pd.DataFrame, end: float, width: int = 900, height: int = 100) -> str:
    """The action units that moved most over the track (largest 5-95 % range), and a legend
    that names them (AU12 lip corner puller)."""
    names = {column: f"AU{column[2:4]} {column[5:].replace('_', ' ')}" for column in AU_COLUMNS}
    return _moved_most(track, names, "action units", "activity", end, width, height)


def _moved_most(
    track: pd.DataFrame,
    names: dict[str, str],
    what: str,
    y_label: str,
    end: float,
    width: int,
    height: int,
) -> str:
    """The columns of `names` (column -> name) that moved most over the track, in [0, 1]."""
    moving = track[list(names)]
    spread = (moving.quantile(0.95) - moving.quantile(0.05)).dropna()
    top = spread.sort_values(ascending=False, kind="stable").index[: len(SHAPE_COLOURS)]
    t, values = _binned(track, list(top), end)
    x = t / end * width
    series = [
        _polylines(x, _scaled(values[:, k], 0, 1, height), c)
        for k, c in enumerate(SHAPE_COLOURS[: len(top)])
    ]
    ticks = [(height * (1 - p), f"{p:g}") for p in (0, 0.5, 1)]
    legend = "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{html.escape(names[column])} '
        f"({spread[column]:.2f})</span>"
        for column, c in zip(top, SHAPE_COLOURS, strict=False)
    )
    title = f"the {what} that moved most"
    chart = _chart(width, height, "".join(series), title, end, y_label, ticks)
    return f'{chart}<p class="legend">{what} that moved most (5-95 % range): {legend}</p>'


def _scaled(values: np.ndarray, low: float, high: float, height: float) -> np.ndarray:
    """y in pixels (0 at the top) of values between low (bottom) and high (top)."""
    return (1 - (values - low) / (high - low)) * height


def _polylines(x: np.ndarray, y: np.ndarray, colour: str) -> str:
    """One polyline per run of finite y values (a gap where y is NaN)."""
    runs: list[list[str]] = [[]]
    for a, b in zip(x, y, strict=True):
        if np.isfinite(b):
            runs[-1].append(f"{a:.1f},{b:.1f}")
        elif runs[-1]:
            runs.append([])
    return "".join(
        f'<polyline points="{" ".join(r)}" fill="none" stroke="{colour}"/>' for r in runs if r
    )


def _binned(track: pd.DataFrame, columns: list[str], end: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, values): the track's rows averaged into at most MAX_POINTS time bins (NaN
    where a bin has no value)."""
    t = track["timestamp_s"].to_numpy(np.float64)
    values = track[columns].to_numpy(np.float64)
    if len(t) <= MAX_POINTS:
        return t, values
    bins = np.minimum((t / end * MAX_POINTS).astype(int), MAX_POINTS - 1)
    frame = pd.DataFrame(values).groupby(bins)
    return pd.Series(t).groupby(bins).mean().to_numpy(), frame.mean().to_numpy()


def sparkline(valence: np.ndarray, duration_s: float, width: int = 120, height: int = 24) -> str:
    """Valence in [-1, 1] over equal stretches of the video (NaN: no face there), as one
    line per run of stretches with faces, with its scale: -1 to +1, 0 to the video's end."""
    if np.isfinite(valence).sum() < 2:
        return ""
    x = (np.arange(len(valence)) + 0.5) / len(valence) * width
    body = _polylines(x, _scaled(valence, -1, 1, height), "#2ca02c")
    frame = (
        f'<line x1="0" x2="0" y1="0" y2="{height}" stroke="#888"/>'
        f'<line x1="0" x2="{width}" y1="{height}" y2="{height}" stroke="#888"/>'
        f'<text x="-3" y="7" text-anchor="end">+1</text>'
        f'<text x="-3" y="{height}" text-anchor="end">-1</text>'
        f'<text x="0" y="{height + 9}">0 s</text>'
        f'<text x="{width}" y="{height + 9}" text-anchor="end">{duration_s:.0f} s</text>'
    )
    inner = f'<g transform="translate(16,2)" font-size="8">{body}{frame}</g>'
    return _svg(width + 18, height + 12, inner, "valence (-1 to +1) over the video's time (s)")


def _chart(
    width: int,
    height: int,
    body: str,
    title: str,
    end: float,
    y_label: str,
    y_ticks: list[tuple[float, str]],
) -> str:
    """A plot: `body` drawn in a width x height area whose x runs from 0 to `end` seconds,
    framed by a time axis in seconds and a labelled y axis; y_ticks: (y in pixels of the
    area, label)."""
    left, top, right, bottom = 48, 6, 10, 30
    parts = [
        f'<line x1="0" x2="0" y1="0" y2="{height}" stroke="#888"/>',
        f'<line x1="0" x2="{width}" y1="{height}" y2="{height}" stroke="#888"/>',
    ]
    for y, label in y_ticks:
        parts.append(
            f'<line x1="-4" x2="0" y1="{y:.1f}" y2="{y:.1f}" stroke="#888"/>'
            f'<text x="-6" y="{y + 3:.1f}" text-anchor="end">{html.escape(label)}'
            "</text>"
        )
    for t in _time_ticks(end):
        x = t / end * width
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{height}" y2="{height + 4}" '
            f'stroke="#888"/><text x="{x:.1f}" y="{height + 14}" '
            f'text-anchor="middle">{t:g}</text>'
        )
    parts.append(
        f'<text x="{width / 2:.0f}" y="{height + 27}" text-anchor="middle">time (s)</text>'
        f'<text transform="translate({10 - left},{height / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
    )
    inner = f'<g transform="translate({left},{top})" font-size="10">{body}{"".join(parts)}</g>'
    return _svg(width + left + right, height + top + bottom, inner, title)


def _time_ticks(end: float) -> np.ndarray:
    """Round times in seconds from 0 to `end`, at most about 10 of them."""
    steps = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
    step = next((s for s in steps if end / s <= 10), end / 10)
    return np.arange(0, end + 1e-9, step)


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>{body}</svg>'
    )


def share_bar(shares: dict[str, float], width: int = 160, height: int = 12) -> str:
    """The share of each expression (EMOTIONS order, summing to 1) as one stacked bar."""
    x, body = 0.0, []
    for emotion in EMOTIONS:
        w = shares.get(emotion, 0.0) * width
        if w > 0:
            body.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" '
                f'fill="{COLOURS[emotion]}"><title>{emotion} {shares[emotion]:.0%}</title></rect>'
            )
        x += w
    return _svg(width, height, "".join(body), "share of each expression")


def valence_by_date(
    dates: list[str], valence: np.ndarray, width: int = 160, height: int = 24
) -> str:
    """Mean valence in [-1, 1] of each of a person's videos, in order of recording (dates:
    the first and last are written under the line)."""
    if len(valence) < 2:
        return ""
    x = np.arange(len(valence)) / (len(valence) - 1) * width
    body = _polylines(x, _scaled(np.asarray(valence, float), -1, 1, height), "#2ca02c")
    frame = (
        f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#ccc"/>'
        f'<text x="0" y="{height + 9}">{html.escape(dates[0])}</text>'
        f'<text x="{width}" y="{height + 9}" text-anchor="end">{html.escape(dates[-1])}</text>'
    )
    inner = f'<g transform="translate(2,2)" font-size="8">{body}{frame}</g>'
    return _svg(width + 4, height + 12, inner, "mean valence (-1 to +1) of each video, by date")
