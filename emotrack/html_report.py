"""HTML pages of a lake: paginated indexes, a page per video and a page per run, offline and
self-contained.

    _report/index.html          the newest PAGE_SIZE videos, newest first, with links to the
                                numbered pages and to the runs' pages
    _report/index-<n>.html      all videos, PAGE_SIZE a page, page 1 the oldest
    _report/<video_id>.html     per face track: a thumbnail, the 7 probabilities as a
                                stacked area, valence, arousal and intensity lines, the
                                episodes as bands and as a table, the head pose and the
                                blendshapes and action units that moved most; the video's facts
    _report/thumbs/<video_id>-<track_id>.jpg   a face of each track
    _report/runs/<run>.html     what one run did: each video's outcome or reason
    _report/pages.json          a digest of each numbered page's rows: a page is written
                                again only when its rows changed

A video's page is rendered where the video was analysed (video_files), from the rows in hand;
the indexes come from `videos` and `summaries` only (one row per video, the sparkline from
summaries.valence_series), never from a scan of `tracks`; a run writes the pages whose
rows changed, which for new videos is the last numbered page and index.html.

Plots are inline SVG drawn here (no JavaScript, CSS or fonts from elsewhere): a page stays
small because each series is averaged into at most charts.MAX_POINTS points.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np
import pandas as pd

from emotrack import charts
from emotrack.lake import Lake

REPORT_DIR = "_report"  # inside the lake (readers skip "_" folders)
PAGE_SIZE = 500
STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
.failed{color:#a00}.plot{margin:.3em 0}.legend span{margin-right:1em}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}nav a{margin-right:.6em}"""
_ROW = re.compile(r"<tr[ >].*?</tr>", re.S)  # a row of a table of our pages
_INDEX_QUERY = """
WITH s AS (
  SELECT * FROM summaries
  QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY model_version) = 1
)
SELECT v.video_id, v.source_uri, v.status, v.duration_s, v.processed_at AS happened_at, s.n_tracks,
       s.dominant_emotion, s.valence_series, f.stage, f.message
FROM videos v LEFT JOIN s USING (video_id) LEFT JOIN failures f USING (source_uri)
UNION ALL
SELECT NULL, source_uri, 'failed', NULL, failed_at, NULL, NULL, NULL, stage, message
FROM failures WHERE source_uri NOT IN (SELECT source_uri FROM videos)
ORDER BY happened_at, source_uri
"""


class ReportFolder:
    """Where pages go: the lake's _report (on disk or in a bucket), or a local folder."""

    def __init__(self, lake: Lake | None = None, folder: Path | None = None) -> None:
        assert (lake is None) != (folder is None)
        self.lake, self.folder = lake, folder

    def write(self, name: str, data: bytes) -> None:
        if self.lake is not None:
            self.lake.store.write_bytes(f"{REPORT_DIR}/{name}", data)
        else:
            assert self.folder is not None
            path = self.folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def read(self, name: str) -> bytes | None:
        try:
            if self.lake is not None:
                return self.lake.store.read_bytes(f"{REPORT_DIR}/{name}")
            assert self.folder is not None
            return (self.folder / name).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        if self.lake is not None:
            self.lake.store.delete(f"{REPORT_DIR}/{name}")
        else:
            assert self.folder is not None
            (self.folder / name).unlink(missing_ok=True)

    def names(self, folder: str) -> list[str]:
        """The names of the files under `folder` of the report (recursively)."""
        if self.lake is not None:
            keys = self.lake.store.keys(f"{REPORT_DIR}/{folder}")
            return [k.removeprefix(f"{REPORT_DIR}/") for k in keys]
        assert self.folder is not None
        found = (self.folder / folder).rglob("*") if (self.folder / folder).is_dir() else []
        return sorted(str(p.relative_to(self.folder)) for p in found if p.is_file())

    def location(self, name: str = "index.html") -> str:
        """The page's path (a lake on disk, a folder) or URL (a lake in a bucket)."""
        if self.lake is None:
            assert self.folder is not None
            return str((self.folder / name).resolve())
        return (
            str(self.lake.root / REPORT_DIR / name)
            if self.lake.local
            else f"{self.lake.url}/{REPORT_DIR}/{name}"
        )


def video_files(
    video: dict[str, Any],
    tracks: pd.DataFrame,
    episodes: pd.DataFrame,
    thumbnails: dict[int, bytes],
    people: dict[int, tuple[str, str]] | None = None,
) -> dict[str, bytes]:
    """A video's page and its face thumbnails, by name under the report folder. `video` is
    its videos row with model_version; thumbnails: track_id -> JPEG; people: track_id ->
    who it is (person id and name), where known."""
    video_id = video["video_id"]
    files = {f"thumbs/{video_id}-{t}.jpg": jpeg for t, jpeg in thumbnails.items() if jpeg}
    shown = {int(name.rsplit("-", 1)[1][:-4]) for name in files}
    files[f"{video_id}.html"] = video_page(video, tracks, episodes, shown, people).encode()
    return files


def video_page(
    video: dict[str, Any],
    tracks: pd.DataFrame,
    episodes: pd.DataFrame,
    thumbs: set[int],
    people: dict[int, tuple[str, str]] | None = None,
) -> str:
    """The page of one video (its videos row with model_version) from its rows of one model
    version; thumbs: the tracks that have a thumbnail; people: track_id -> (person id,
    label) of the tracks whose person is known."""
    tracks = tracks.sort_values(["track_id", "timestamp_s"])
    last = float(tracks["timestamp_s"].max()) if len(tracks) else 0.0
    end = max(float(video.get("duration_s") or 0), last) or 1.0
    sections = []
    for track_id, track in tracks.groupby("track_id"):
        mine = episodes[episodes["track_id"] == track_id]
        image = (
            f'<img src="thumbs/{video["video_id"]}-{track_id}.jpg" height="96">'
            if track_id in thumbs
            else ""
        )
        geometry = ""
        if track.reindex(columns=charts.POSE_COLUMNS).notna().any().any():
            geometry = (
                f'<div class="plot">{charts.pose_chart(track, end)}</div>'
                f'<div class="plot">{charts.blendshape_chart(track, end)}</div>'
            )
        if track.reindex(columns=charts.AU_COLUMNS).notna().any().any():
            geometry += f'<div class="plot">{charts.action_unit_chart(track, end)}</div>'
        who = (people or {}).get(int(track_id))
        named = f': <a href="people.html#{who[0]}">{html.escape(who[1])}</a>' if who else ""
        sections.append(
            f"<h2>face {track_id}{named}</h2>{image}"
            f'<div class="plot">{charts.stacked_chart(track, end)}</div>'
            f'<div class="plot">{charts.affect_chart(track, mine, end)}</div>{geometry}'
            f"{_episode_table(mine)}"
        )
    facts = (
        f"{html.escape(str(video['codec']))}, {video['width']}x{video['height']}, rotation "
        f"{video['rotation']}, {video['duration_s']:.1f} s at {video['fps']:.2f} fps, analysed "
        f"at {video['analysis_fps']:g} fps ({video['frames_analysed']} frames), model "
        f"{html.escape(str(video['model_version']))}"
    )
    legend = _legend()
    name = html.escape(PurePosixPath(str(video["source_uri"])).name)
    body = (
        f'<p><a href="index.html">all videos</a></p><h1>{name}</h1><p>{facts}</p>'
        f'<p class="legend">{legend}</p>'
        + ("".join(sections) or "<p>No face was found in this video.</p>")
    )
    return _page(name, body)


def write_indexes(
    lake: Lake, out: ReportFolder, run: str | None = None, page_size: int = PAGE_SIZE
) -> str:
    """Write index.html and the numbered pages whose rows changed; returns where index.html
    is. `run`: the name of this run's page (runs/<run>.html), listed first. Reads `videos`,
    `summaries` and `failures` (one row per video or file), never `tracks`."""
    with lake.connect(["videos", "summaries", "failures"]) as con:
        rows = con.execute(_INDEX_QUERY).df()
    pages = [rows.iloc[i : i + page_size] for i in range(0, len(rows), page_size)]
    manifest = json.loads(out.read("pages.json") or b"{}")
    nav = _nav(len(pages))
    for number, page in enumerate(pages, start=1):
        digest = hashlib.sha256(
            page.to_json(orient="values", date_format="iso").encode()
        ).hexdigest()
        if manifest.get(str(number)) != digest:
            first = page_size * (number - 1) + 1
            title = f"videos {first}-{first + len(page) - 1}"
            out.write(f"index-{number}.html", _index_page(title, page, nav, []).encode())
            manifest[str(number)] = digest
    for stale in [k for k in manifest if int(k) > len(pages)]:
        del manifest[stale]
        out.delete(f"index-{stale}.html")
    out.write("pages.json", json.dumps(manifest).encode())
    runs = _remember_run(out, run) if run else json.loads(out.read("runs.json") or b"[]")
    counts = rows["status"].value_counts().to_dict()
    ok, failed = counts.get("ok", 0), counts.get("failed", 0)
    title = f"emotrack: {len(rows)} videos ({ok} ok, {failed} failed)"
    out.write("index.html", _index_page(title, rows.iloc[-page_size:], nav, runs).encode())
    return out.location()


class RunRows(Protocol):
    """A run's outcome rows, counted and read as often as needed, never held in full."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[dict[str, Any]]: ...


def write_run_page(out: ReportFolder, run: str, outcomes: RunRows) -> str:
    """The page of one run: each video's outcome (video, status, detail, video_id), the ones
    that did not end ok first, each part in the order given; PAGE_SIZE a page, written as
    they are read (`outcomes` is read twice, never held). Returns where its first page is."""
    counts = Counter(o["status"] for o in outcomes)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no videos"
    pages = max(1, -(-len(outcomes) // PAGE_SIZE))
    names = [f"{run}.html"] + [f"{run}-{n}.html" for n in range(2, pages + 1)]
    links = " ".join(f'<a href="{PurePosixPath(n).name}">{i}</a>' for i, n in enumerate(names, 1))
    ordered = chain(
        (o for o in outcomes if o["status"] != "ok"), (o for o in outcomes if o["status"] == "ok")
    )
    for name in names:
        rows = "".join(
            f'<tr class="{"" if o["status"] in ("ok", "skipped") else "failed"}">'
            f"<td>{_video_link(o.get('video_id'), o['video'], o['status'], depth=1)}</td>"
            f"<td>{html.escape(o['status'])}</td><td>{html.escape(o.get('detail') or '')}</td></tr>"
            for o in islice(ordered, PAGE_SIZE)
        )
        body = (
            f'<p><a href="../index.html">all videos</a></p><h1>run {html.escape(run)}</h1>'
            f"<p>{html.escape(summary)}</p><nav>pages: {links}</nav>"
            f"<table><tr><th>video</th><th>status</th><th>what happened</th></tr>{rows}</table>"
        )
        out.write(f"runs/{name}", _page(f"run {run}", body).encode())
    return out.location(f"runs/{names[0]}")


def forget_pages(lake: Lake, video_ids: Iterable[str], names: Iterable[str]) -> int:
    """Take videos out of the lake's report: their pages and thumbnails deleted, their rows
    taken out of every run's pages (by content id, or by file name for a file that was
    never read), the indexes written again from the tables (whose rows must be deleted
    first). Returns the files deleted or rewritten."""
    out = ReportFolder(lake=lake)
    ids = set(video_ids)
    gone = [f"{v}.html" for v in ids] + [
        n for n in out.names("thumbs") if n.split("/")[-1].rsplit("-", 1)[0] in ids
    ]
    for name in gone:
        out.delete(name)
    marks = [f"{v}.html" for v in ids] + [f">{html.escape(n)}<" for n in set(names)]
    changed = 0
    for name in out.names("runs"):
        page = (out.read(name) or b"").decode()
        kept = _ROW.sub(lambda row: "" if any(m in row[0] for m in marks) else row[0], page)
        if kept != page:
            out.write(name, kept.encode())
            changed += 1
    write_indexes(lake, out)
    return len(gone) + changed


def export_report(lake: Lake, folder: Path) -> str:
    """Every page of the lake into `folder`: the indexes, each video's page from its rows
    (one scan of `tracks` and `episodes`), the thumbnails the runs kept; returns where the
    index is."""
    out = ReportFolder(folder=folder)
    write_video_pages(lake, out)
    if lake.has_table("people") and lake.count("people"):
        write_people_page(lake, out)
    return write_indexes(lake, out)


def write_video_pages(lake: Lake, out: ReportFolder, video_ids: Iterable[str] | None = None) -> int:
    """Write the pages (and thumbnails) of the lake's videos (those of `video_ids`, else
    all) into `out`, from their rows (one scan of `tracks` and `episodes`) and the
    thumbnails the runs kept. Returns the pages written."""
    where, params = (
        (None, None)
        if video_ids is None
        else ("video_id IN (SELECT unnest(?))", [sorted(video_ids)])
    )
    videos = lake.read("videos", f"status = 'ok'{' AND ' + where if where else ''}", params)
    summaries = lake.read("summaries", where, params).drop_duplicates("video_id")
    tracks = lake.read("tracks", where, params)
    episodes = lake.read("episodes", where, params)
    facts = videos.merge(summaries[["video_id", "model_version"]], on="video_id", how="left")
    source = ReportFolder(lake=lake)
    labels = person_labels(lake, where, params)
    by_video = {key: rows for key, rows in tracks.groupby(["video_id", "model_version"])}
    episodes_by = {key: rows for key, rows in episodes.groupby(["video_id", "model_version"])}
    for video in facts.to_dict("records"):
        key = (video["video_id"], video["model_version"])
        mine = by_video.get(key, tracks.iloc[:0])
        thumbs = {}
        for track_id in sorted(set(mine["track_id"])):
            jpeg = source.read(f"thumbs/{video['video_id']}-{track_id}.jpg")
            if jpeg:
                thumbs[int(track_id)] = jpeg
        who = labels.get(video["video_id"], {})
        files = video_files(video, mine, episodes_by.get(key, episodes.iloc[:0]), thumbs, who)
        for name, data in files.items():
            out.write(name, data)
    return len(facts)


def person_labels(lake: Lake, where: str | None, params: list[Any] | None) -> dict[str, Any]:
    """video_id -> track_id -> (person_id, "p3 Ada") for the tracks whose person is known."""
    if not lake.has_table("track_people"):  # a lake written before 0.5, never opened since
        return {}
    tracks = lake.read("track_people", where, params)
    if tracks.empty:
        return {}
    named = lake.read("people").set_index("person_id")["name"].dropna().to_dict()
    labels: dict[str, dict[int, tuple[str, str]]] = {}
    for video_id, track_id, person in tracks[["video_id", "track_id", "person_id"]].itertuples(
        index=False
    ):
        label = f"{person} {named[person]}" if person in named else person
        labels.setdefault(video_id, {})[int(track_id)] = (person, label)
    return labels


def write_people_page(lake: Lake, out: ReportFolder) -> str:
    """people.html: a row per person of the lake: their thumbnail, name, videos (linked, in
    order of recording), time on screen, the share of each expression over their reliable
    frames, and the mean valence of their reliable frames in each video, in order of
    recording. Returns its name."""
    people = lake.read("people")
    query = """
        WITH s AS (SELECT video_id, min(model_version) AS model_version FROM summaries
                   GROUP BY video_id)
        SELECT tp.person_id, t.video_id, t.emotion, t.valence,
               coalesce(v.recorded_at, v.processed_at) AS seen
        FROM tracks t JOIN s USING (video_id, model_version)
        JOIN track_people tp USING (video_id, track_id) JOIN videos v USING (video_id)
        WHERE coalesce(t.reliable, true)
    """
    appearances = """
        SELECT DISTINCT tp.person_id, v.video_id, v.source_uri,
               coalesce(v.recorded_at, v.processed_at) AS seen
        FROM track_people tp JOIN videos v USING (video_id) ORDER BY seen, source_uri
    """
    with lake.connect(["tracks", "summaries", "track_people", "videos"]) as con:
        frames = con.execute(query).df()
        videos = con.execute(appearances).df()
    rows = []
    for person in people.itertuples():
        mine = frames[frames["person_id"] == person.person_id]
        shares = mine["emotion"].value_counts(normalize=True).to_dict() if len(mine) else {}
        per_video = mine.groupby(["seen", "video_id"])["valence"].mean()
        dates = [f"{seen:%Y-%m-%d}" for seen, _ in per_video.index]
        links = " ".join(
            f'<a href="{v}.html">{html.escape(PurePosixPath(str(u)).name)}</a>'
            for v, u in videos.loc[videos["person_id"] == person.person_id,
                                   ["video_id", "source_uri"]].itertuples(index=False)
        )  # fmt: skip
        thumb = person.thumbnail if isinstance(person.thumbnail, str) else None
        image = f'<img src="{html.escape(thumb)}" height="64">' if thumb else ""
        name = html.escape(person.name) if isinstance(person.name, str) else "(no name)"
        rows.append(
            f'<tr id="{person.person_id}"><td>{image}</td><td>{person.person_id}<br>{name}</td>'
            f"<td>{person.videos}: {links}</td><td>{person.seconds:.1f} s</td>"
            f"<td>{charts.share_bar(shares)}</td>"
            f"<td>{charts.valence_by_date(dates, per_video.to_numpy())}</td></tr>"
        )
    legend = _legend()
    body = (
        f'<p><a href="index.html">all videos</a></p><h1>{len(people)} people</h1>'
        f'<p class="legend">{legend}</p><table><tr><th></th><th>person</th><th>videos</th>'
        f"<th>on screen</th><th>expressions</th><th>valence by video</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    out.write("people.html", _page("people", body).encode())
    return "people.html"


def _remember_run(out: ReportFolder, run: str) -> list[dict[str, str]]:
    runs = json.loads(out.read("runs.json") or b"[]")
    runs = [r for r in runs if r["name"] != run] + [
        {"name": run, "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    ]
    out.write("runs.json", json.dumps(runs).encode())
    return runs


def _nav(pages: int) -> str:
    links = " ".join(f'<a href="index-{n}.html">{n}</a>' for n in range(pages, 0, -1))
    return f'<nav><a href="index.html">newest</a> pages (newest first): {links}</nav>'


def _index_page(title: str, rows: pd.DataFrame, nav: str, runs: list[dict[str, str]]) -> str:
    body = "".join(_index_row(row) for row in rows.iloc[::-1].itertuples())
    head = (
        "<tr><th></th><th>video</th><th>duration</th><th>faces</th><th>mostly</th>"
        "<th>valence</th><th>status</th><th>reason</th></tr>"
    )
    recent = "".join(
        f'<a href="runs/{html.escape(r["name"])}.html">{html.escape(r["at"])}</a>'
        for r in runs[::-1][:20]
    )
    return _page(
        "emotrack report",
        f"<h1>{html.escape(title)}</h1>{nav}"
        + (f"<nav>runs: {recent}</nav>" if recent else "")
        + f"<table>{head}{body}</table>",
    )


def _index_row(video: Any) -> str:
    name = PurePosixPath(str(video.source_uri)).name
    if video.status != "ok":
        reason = html.escape(f"{_text(video.stage, '')}: {_text(video.message, '')}".strip(": "))
        return (
            f'<tr class="failed"><td></td><td>{html.escape(name)}</td><td></td><td></td><td></td>'
            f"<td></td><td>{html.escape(str(video.status))}</td><td>{reason}</td></tr>"
        )
    faces = _int(video.n_tracks)
    image = (
        f'<img src="thumbs/{video.video_id}-0.jpg" height="48">' if faces not in ("", "0") else ""
    )
    values = _floats(video.valence_series)
    return (
        f"<tr><td>{image}</td><td>{_video_link(video.video_id, name, 'ok')}</td>"
        f"<td>{float(video.duration_s or 0):.1f} s</td><td>{faces}</td>"
        f"<td>{html.escape(_text(video.dominant_emotion, 'no face'))}</td>"
        f"<td>{charts.sparkline(values, float(video.duration_s or 0))}</td>"
        "<td>ok</td><td></td></tr>"
    )


def _floats(series: Any) -> np.ndarray:
    """A list column's value as float64, NaN for its nulls (DuckDB gives a masked array)."""
    if series is None or (np.isscalar(series) and pd.isna(series)):
        return np.zeros(0)
    return np.ma.filled(np.ma.asarray(series, dtype=np.float64), np.nan)


def _video_link(video_id: str | None, name: str, status: str, depth: int = 0) -> str:
    if status not in ("ok", "skipped") or not video_id:
        return html.escape(name)
    return f'<a href="{"../" * depth}{video_id}.html">{html.escape(name)}</a>'


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


def _legend() -> str:
    """The expressions' colours, as the charts draw them."""
    return "".join(
        f'<span><i class="swatch" style="background:{c}"></i>{e}</span>'
        for e, c in charts.COLOURS.items()
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _text(value: object, missing: str) -> str:
    return missing if value is None or pd.isna(value) else str(value)  # type: ignore[call-overload]


def _int(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))  # type: ignore[call-overload]
