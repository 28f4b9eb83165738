"""Who is who: the identity set's grouping, and what telling people apart costs.

    make bench      (or: .venv/bin/python benchmarks/bench_identity.py [--seconds 120])

1. Grouping, on the identity set (emotrack.training.identity_set, built here): every clip
   analysed with identity on, each track labelled from the set's truth, the tracks of each
   part grouped as --people does (emotrack.people.assign_people). The threshold is chosen
   on the `choose` part and scored on the `score` part: BCubed precision and recall over
   tracks. Clips where people follow one another at the same place: appearances with a
   track of their own, with identity on and off. The score part again with --no-geometry
   (faces aligned on the detector's keypoints).
2. Assignment, on synthetic identities: --new tracks against --known ones already grouped
   into people (emotrack.people.assign_people), and the rewrite of track_people that a
   merge or a split makes, at that size.
3. Cost, in one run: emotrack.analysis.extract_features with identity on against off (as
   before 0.5), each model on one thread as in a Dask worker, on the talking head looped
   to --seconds and on the five-face photo (multi_face.jpg, slowly zooming) for as long;
   runs alternate, --repeats each, medians.
4. Whole runs over those two videos (`emotrack run`, start-up included, a new lake each):
   the default against --people, alternating, --run-repeats each, medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_throughput import ROOT, looped  # noqa: E402

from emotrack.analysis import extract_features, load_models  # noqa: E402
from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.lake import Lake  # noqa: E402
from emotrack.people import assign_people  # noqa: E402
from emotrack.settings import Settings  # noqa: E402
from emotrack.training.evaluate_identity import (  # noqa: E402
    analyse_clips,
    appearances,
    choose_threshold,
    label_tracks,
    score_grouping,
)
from emotrack.training.identity_set import build_identity_set  # noqa: E402
from emotrack.video import VideoSource  # noqa: E402

CUTS = ("choose-cuts", "score-cuts")


def grouping(settings: Settings) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        truth = build_identity_set(Path(tmp), settings.cache_dir)
        tracks = label_tracks(analyse_clips(Path(tmp) / "clips", settings), truth)
        keypoints = settings.with_run_options(geometry=False)  # aligned on the detector's keypoints
        no_geometry = label_tracks(analyse_clips(Path(tmp) / "clips", keypoints), truth)
        cut_clips = Path(tmp) / "cuts"
        cut_clips.mkdir()
        for clip in CUTS:
            (Path(tmp) / "clips" / f"{clip}.mp4").rename(cut_clips / f"{clip}.mp4")
        without = analyse_clips(cut_clips, settings.with_run_options(identity=False))
    unnamed = tracks[tracks["person"].isna()]
    print(f"identity set: {len(tracks)} tracks, {tracks['person'].nunique()} people")
    print(f"tracks the truth does not name: {len(unnamed)}")
    chosen, scores = choose_threshold(tracks[tracks["part"] == "choose"])
    print("\n| threshold | choose: precision | recall | groups (people) |")
    print("|---|---|---|---|")
    for s in scores:
        mark = " (chosen)" if s.threshold == chosen.threshold else ""
        print(f"| {s.threshold:.3f}{mark} | {s.precision:.3f} | {s.recall:.3f} | "
              f"{s.groups} ({s.people}) |")  # fmt: skip
    final = score_grouping(tracks[tracks["part"] == "score"], chosen.threshold)
    print(
        f"\nscore part at {chosen.threshold:.3f}: BCubed precision {final.precision:.3f}, "
        f"recall {final.recall:.3f} ({final.tracks} tracks, {final.people} people, "
        f"{final.groups} groups)"
    )
    flat = score_grouping(no_geometry[no_geometry["part"] == "score"], chosen.threshold)
    print(
        f"the same with --no-geometry: precision {flat.precision:.3f}, recall "
        f"{flat.recall:.3f} ({flat.tracks} tracks, {flat.groups} groups)"
    )
    print("\n| clip | appearances | own track, identity on | off |")
    print("|---|---|---|---|")
    for clip in CUTS:
        count, alone, _ = appearances(tracks, truth, clip)
        _, alone_off, _ = appearances(without, truth, clip)
        print(f"| {clip} | {count} | {alone} | {alone_off} |")


def five_faces(seconds: float, target: Path) -> Path:
    if not target.exists():
        photo = fetch_asset("multi_face.jpg", Settings().cache_dir)
        zoom = "scale=1280:-2,zoompan=z='1+0.0004*on':d=1:s=1280x854:fps=25"
        zoom += f",trim=duration={seconds}"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-i", str(photo),
             "-vf", zoom, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
             str(target)],
            check=True,
        )  # fmt: skip
    return target


def cost(settings: Settings, seconds: float, repeats: int) -> dict[str, Path]:
    work = ROOT / "build" / "bench-videos"
    work.mkdir(parents=True, exist_ok=True)
    videos = {
        "talking head": looped(
            fetch_asset("WolfgangLanger_Pexels.mp4", settings.cache_dir),
            seconds,
            work / f"talking-head-{seconds:.0f}s.mp4",
        ),
        "five faces": five_faces(seconds, work / f"five-faces-{seconds:.0f}s.mp4"),
    }
    settings = settings.with_run_options(tf_threads=1)  # as in a Dask worker
    on = load_models(settings)
    off = on._replace(identity=None)
    print(f"\n| video ({seconds:.0f} s) | identity off (s) | on (s) | on / off |")
    print("|---|---|---|---|")
    for name, video in videos.items():
        source = VideoSource.from_path(video)
        extract_features(source, *on, settings)  # warm-up
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(repeats):
            for label, models in (("off", off), ("on", on)):
                started = time.perf_counter()
                extract_features(source, *models, settings)
                times[label].append(time.perf_counter() - started)
        a, b = statistics.median(times["off"]), statistics.median(times["on"])
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.3f}x |")
    return videos


def assignment(known: int, new: int, people: int) -> None:
    """Assigning `new` tracks against `known` ones already grouped (synthetic identities:
    `people` random unit centres, each track one of them plus noise), and what a merge
    rewrites: track_people with every track, in a lake on disk."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(people, 128)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    who = rng.integers(0, people, known + new)
    vectors = centres[who] + rng.normal(scale=0.03, size=(known + new, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [(f"v{i // 10:015d}", i % 10) for i in range(known + new)]
    identities = pd.DataFrame(
        {"video_id": [v for v, _ in ids], "track_id": [t for _, t in ids],
         "embedding": list(vectors)}
    )  # fmt: skip
    first = assign_people(identities.iloc[:known], {}, 0.45)  # the known tracks' people
    started = time.perf_counter()
    done = assign_people(identities, first.people, 0.45, next_number=people + 1)
    assign_s = time.perf_counter() - started
    wrong = sum(len({done.people[ids[i]] for i in np.flatnonzero(who == p)}) > 1 for p in set(who))
    groups = len(set(done.people.values()))
    print(
        f"\nassigning {new:,} new tracks against {known:,} known ({people:,} people): "
        f"{assign_s:.2f} s; people split in two or more: {wrong}; groups: {groups:,}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        lake.create_tables()
        rows = pd.DataFrame(
            [(v, t, p) for (v, t), p in done.people.items()],
            columns=["video_id", "track_id", "person_id"],
        )
        lake.replace_table("track_people", rows)
        started = time.perf_counter()
        lake.replace_table("track_people", rows)  # what a merge or a split rewrites
        print(f"a merge rewrites track_people ({len(rows):,} rows): "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip


def runs_with_people(videos: dict[str, Path], repeats: int) -> None:
    """Whole runs (`emotrack run`, its own Prefect server and 2 Dask workers, a new lake
    each time) over the cost videos, without and with --people, alternating; medians."""
    cli = Path(sys.executable).with_name("emotrack")
    times: dict[str, list[float]] = {"default": [], "--people": []}
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        archive.mkdir()
        for video in videos.values():
            (archive / video.name).symlink_to(video)
        for i in range(repeats):
            for label, extra in (("default", []), ("--people", ["--people"])):
                lake = Path(tmp) / f"lake-{label}-{i}"
                started = time.perf_counter()
                subprocess.run(
                    [str(cli), "run", str(archive), "--lake", str(lake), *extra],
                    check=True, capture_output=True,
                )  # fmt: skip
                times[label].append(time.perf_counter() - started)
    a, b = statistics.median(times["default"]), statistics.median(times["--people"])
    print(f"\n| whole run, {len(videos)} videos | default (s) | --people (s) | ratio |")
    print("|---|---|---|---|")
    print(f"| emotrack run, start-up in | {a:.1f} | {b:.1f} | {b / a:.3f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the cost videos")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-repeats", type=int, default=2, help="whole runs of each kind")
    parser.add_argument("--known", type=int, default=100_000, help="tracks already grouped")
    parser.add_argument("--new", type=int, default=1_000, help="tracks to assign")
    args = parser.parse_args()
    settings = Settings()
    grouping(settings)
    assignment(args.known, args.new, args.known // 5)
    videos = cost(settings, args.seconds, args.repeats)
    runs_with_people(videos, args.run_repeats)


if __name__ == "__main__":
    main()
