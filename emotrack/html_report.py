"""HTML pages of a lake: a run index and one page per video, offline and self-contained.

    DIR/index.html            every video: thumbnail, duration, faces, dominant expression,
                              a valence sparkline, status, the reason for a failed video
    DIR/<video_id>.html       per face track: a thumbnail at its most intense frame, the 7
                              probabilities as a stacked area, valence, arousal and
                              intensity lines, the episodes as bands and as a table; the
                              video's facts
    DIR/thumbs/<name>.jpg     face thumbnails cropped from the video

Plots are inline SVG drawn here (no JavaScript, CSS or fonts from elsewhere): a page stays
small because each series is averaged into at most MAX_POINTS points.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotrack.lake import Lake
from models.expression_cnn import EMOTIONS

REPORT_DIR = "_report"  # the nightly run's report, inside the lake (readers skip "_" folders)
MAX_POINTS = 400
COLOURS = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#f2b701",
    "sad": "#1f77b4",
    "surprise": "#17becf",
    "neutral": "#c7c7c7",
}
STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
.failed{color:#a00}.plot{margin:.3em 0}.legend span{margin-right:1em}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}"""


def report_folder(lake: Lake) -> Path:
    """Where a run writes the lake's pages: LAKE/_report on disk; for a lake on object
    storage, a local folder of the cache (upload_report copies its pages to LAKE/_report)."""
    if lake.local:
        return lake.root / REPORT_DIR
    from emotrack.settings import Settings

    key = hashlib.sha256(lake.url.encode()).hexdigest()[:16]
    return Settings().cache_dir / "reports" / key


def upload_report(lake: Lake, folder: Path, video_ids: list[str]) -> None:
    """Copy the index and the pages (and thumbnails) of `video_ids` from `folder` into a lake
    on object storage, under LAKE/_report."""
    names = ["index.html", *(f"{v}.html" for v in video_ids)]
    names += [f"thumbs/{p.name}" for v in video_ids for p in (folder / "thumbs").glob(f"{v}-*")]
    for name in names:
        if (folder / name).is_file():
            lake.store.write_bytes(f"{REPORT_DIR}/{name}", (folder / name).read_bytes())


def write_report(lake: Lake, out: Path, video_ids: list[str] | None = None) -> Path:
    """Write the index (all videos) and the pages of `video_ids` (all ok videos when None,
    and always those without a page yet) into `out`; returns the index's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "thumbs").mkdir(exist_ok=True)
    with lake.connect() as con:
        videos = con.execute(
            "SELECT v.*, s.n_tracks, s.dominant_emotion, s.model_version FROM videos v "
            "LEFT JOIN summaries s USING (video_id) ORDER BY v.source_uri"
        ).df()
        failures = con.execute("SELECT source_uri, stage, message FROM failures").df()
        sparks = con.execute(
            "SELECT video_id, floor(timestamp_s) AS second, avg(valence) AS valence "
            "FROM tracks GROUP BY ALL ORDER BY video_id, second"
        ).df()
    ok = videos[videos["status"] == "ok"]
    for video in ok.itertuples():
        page = out / f"{video.video_id}.html"
        if video_ids is None or video.video_id in video_ids or not page.exists():
            _page_from_lake(lake, out, video)
    index = out / "index.html"
    index.write_text(_index(videos, failures, sparks, out))
    return index


def _index(videos: pd.DataFrame, failures: pd.DataFrame, sparks: pd.DataFrame, out: Path) -> str:
    reasons = {r.source_uri: f"{r.stage}: {r.message}" for r in failures.itertuples()}
    rows = []
    for video in videos.itertuples():
        name = html.escape(Path(video.source_uri).name)
        if video.status == "ok":
            thumb = out / "thumbs" / f"{video.video_id}-0.jpg"
            image = f'<img src="thumbs/{thumb.name}" height="48">' if thumb.exists() else ""
            spark = sparks[sparks["video_id"] == video.video_id]
            rows.append(
                f'<tr><td>{image}</td><td><a href="{video.video_id}.html">{name}</a></td>'
                f"<td>{video.duration_s:.1f} s</td><td>{_int(video.n_tracks)}</td>"
                f"<td>{html.escape(_text(video.dominant_emotion, 'no face'))}</td>"
                f"<td>{_sparkline(spark['second'].to_numpy(), spark['valence'].to_numpy())}</td>"
                "<td>ok</td><td></td></tr>"
            )
        else:
            reason = html.escape(reasons.get(video.source_uri, ""))
            rows.append(
                f'<tr class="failed"><td></td><td>{name}</td><td></td><td></td><td></td><td></td>'
                f"<td>{html.escape(video.status)}</td><td>{reason}</td></tr>"
            )
    listed = set(videos["source_uri"])
    for failure in failures.itertuples():  # unreadable files with no videos row
        if failure.source_uri not in listed:
            name = html.escape(Path(failure.source_uri).name)
            reason = html.escape(f"{failure.stage}: {failure.message}")
            rows.append(
                f'<tr class="failed"><td></td><td>{name}</td><td></td><td></td><td></td>'
                f"<td></td><td>failed</td><td>{reason}</td></tr>"
            )
    head = (
        "<tr><th></th><th>video</th><th>duration</th><th>faces</th><th>mostly</th>"
        "<th>valence</th><th>status</th><th>reason</th></tr>"
    )
    body = f"<h1>emotrack: {len(videos)} videos</h1><table>{head}{''.join(rows)}</table>"
    return _page("emotrack report", body)


def write_video_page(
    out: Path, video: dict[str, Any], tracks: pd.DataFrame, episodes: pd.DataFrame
) -> Path:
    """Write (or rewrite) the page of one video from the rows just published: `video` is its
    videos row with video_id and model_version; returns the page's path."""
    (out / "thumbs").mkdir(parents=True, exist_ok=True)
    _write_page(out, next(pd.DataFrame([video]).itertuples()), tracks, episodes)
    return out / f"{video['video_id']}.html"


def _page_from_lake(lake: Lake, out: Path, video: Any) -> None:
    tracks = lake.read_video("tracks", video.video_id)
    try:
        episodes = lake.read_video("episodes", video.video_id)
    except FileNotFoundError:
        episodes = pd.DataFrame(columns=["track_id", "emotion", "start_s", "end_s"])
    _write_page(out, video, tracks, episodes)


def _write_page(out: Path, video: Any, tracks: pd.DataFrame, episodes: pd.DataFrame) -> None:
    tracks = tracks.sort_values(["track_id", "timestamp_s"])
    end = max(float(video.duration_s or 0), float(tracks["timestamp_s"].max() or 0)) or 1.0
    sections = []
    for track_id, track in tracks.groupby("track_id"):
        thumb = _thumbnail(video, track, out / "thumbs" / f"{video.video_id}-{track_id}.jpg")
        mine = episodes[episodes["track_id"] == track_id]
        image = f'<img src="thumbs/{thumb.name}" height="96">' if thumb else ""
        sections.append(
            f"<h2>face {track_id}</h2>{image}"
            f'<div class="plot">{_stacked(track, end)}</div>'
            f'<div class="plot">{_lines(track, mine, end)}</div>{_episode_table(mine)}'
        )
    facts = (
        f"{html.escape(str(video.codec))}, {video.width}x{video.height}, rotation "
        f"{video.rotation}, {video.duration_s:.1f} s at {video.fps:.2f} fps, analysed at "
        f"{video.analysis_fps:g} fps ({video.frames_analysed} frames), model "
        f"{html.escape(str(video.model_version))}"
    )
    legend = "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{e}</span>' for e, c in COLOURS.items()
    )
    name = html.escape(Path(video.source_uri).name)
    body = (
        f'<p><a href="index.html">all videos</a></p><h1>{name}</h1><p>{facts}</p>'
        f'<p class="legend">{legend}</p>'
        + ("".join(sections) or "<p>No face was found in this video.</p>")
    )
    (out / f"{video.video_id}.html").write_text(_page(name, body))


def _stacked(track: pd.DataFrame, end: float, width: int = 900, height: int = 120) -> str:
    """The 7 probabilities over time as a stacked area."""
    t, probs = _binned(track, [f"p_{e}" for e in EMOTIONS], end)
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
    return _svg(width, height, "".join(paths), "expression probabilities")


def _lines(
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
    series = []
    for column, colour, scale in ((0, "#2ca02c", 1), (1, "#ff7f0e", 1), (2, "#555", 0)):
        v = values[:, column]
        y = (1 - (v + 1) / 2) * height if scale else (1 - v) * height
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
        series.append(f'<polyline points="{points}" fill="none" stroke="{colour}"/>')
    axis = f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#bbb"/>'
    title = "valence (green), arousal (orange), intensity (grey); episodes as bands"
    return _svg(width, height, bands + axis + "".join(series), title)


def _binned(track: pd.DataFrame, columns: list[str], end: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, values): the track's rows averaged into at most MAX_POINTS time bins."""
    t = track["timestamp_s"].to_numpy(np.float64)
    values = track[columns].to_numpy(np.float64)
    if len(t) <= MAX_POINTS:
        return t, values
    bins = np.minimum((t / end * MAX_POINTS).astype(int), MAX_POINTS - 1)
    used = np.unique(bins)
    means = np.array([values[bins == b].mean(axis=0) for b in used])
    return np.array([t[bins == b].mean() for b in used]), means


def _sparkline(t: np.ndarray, valence: np.ndarray, width: int = 120, height: int = 24) -> str:
    if len(t) < 2:
        return ""
    x = (t - t.min()) / max(t.max() - t.min(), 1e-9) * width
    y = (1 - (valence + 1) / 2) * height
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    body = f'<polyline points="{points}" fill="none" stroke="#2ca02c"/>'
    return _svg(width, height, body, "valence over the video")


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>{body}</svg>'
    )


def _episode_table(episodes: pd.DataFrame) -> str:
    if episodes.empty:
        return "<p>No episodes (only neutral, or nothing that lasted 1 s).</p>"
    rows = "".join(
        f"<tr><td>{html.escape(e.emotion)}</td><td>{e.start_s:.1f}</td><td>{e.end_s:.1f}</td>"
        f"<td>{e.duration_s:.1f}</td><td>{e.peak_s:.1f}</td><td>{e.peak_intensity:.2f}</td>"
        f"<td>{e.mean_valence:+.2f}</td><td>{e.mean_arousal:+.2f}</td></tr>"
        for e in episodes.sort_values("start_s").itertuples()
    )
    head = (
        "<tr><th>episode</th><th>start s</th><th>end s</th><th>duration s</th><th>peak s</th>"
        "<th>peak intensity</th><th>valence</th><th>arousal</th></tr>"
    )
    return f"<table>{head}{rows}</table>"


def _thumbnail(video: Any, track: pd.DataFrame, path: Path) -> Path | None:
    """The face at the track's most intense frame, cropped from the video (None if the video
    cannot be read any more)."""
    import cv2

    from emotrack.errors import UnreadableVideo
    from emotrack.storage import is_url
    from emotrack.video import VideoSource

    if path.exists():
        return path
    if is_url(video.source_uri):  # on object storage: its local copy is gone by now
        return None
    row = track.loc[track["intensity"].idxmax()]
    source = VideoSource(  # as probed when it was analysed: no second probe
        path=Path(video.source_uri),
        video_id=video.video_id,
        size_bytes=int(video.size_bytes),
        duration_s=float(video.duration_s),
        fps=float(video.fps),
        width=int(video.width),
        height=int(video.height),
        codec=str(video.codec),
        rotation=int(video.rotation),
    )
    rate = float(video.analysis_fps)
    try:
        _, frame = next(iter(source.frames(rate, float(row["timestamp_s"]), 1.0 / rate)))
    except (UnreadableVideo, StopIteration, OSError):
        return None
    scale = frame.shape[1] / source.width
    x, y, w, h = (float(row[k]) * scale for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
    pad = 0.2 * max(w, h)
    top, left = max(int(y - pad), 0), max(int(x - pad), 0)
    crop = frame[top : int(y + h + pad), left : int(x + w + pad)]
    if crop.size == 0:
        return None
    cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _text(value: object, missing: str) -> str:
    return missing if value is None or pd.isna(value) else str(value)  # type: ignore[call-overload]


def _int(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))  # type: ignore[call-overload]
