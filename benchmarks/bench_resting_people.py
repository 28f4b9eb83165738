"""What people's resting faces cost a nightly run with --people (step 3c of flows/nightly.py).

    make bench      (or: .venv/bin/python benchmarks/bench_resting_people.py [--seconds 120])

One run, over two videos of --seconds: the man of single_face.mp4 looped (he gets a resting
face, as a person) and the talking head looped (never at rest: none).
1. A whole `emotrack run --people` (its own Prefect server and Dask workers, a new lake),
   which includes step 3c once.
2. Step 3c again on that lake, --repeats times, each part timed (medians): finding the
   videos and their people's resting faces (emotrack.person_baselines.people_jobs: DuckDB
   over features, track_people and baselines), scoring them again from their features
   (emotrack.units.rescore_videos: read, score, page) and committing them (one Delta commit
   per table, the pages written).
The ratio is step 3c's time against the whole run's, measured in this run.
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
from bench_throughput import ROOT, looped  # noqa: E402

from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.html_report import REPORT_DIR  # noqa: E402
from emotrack.inference import DEFAULT_MODEL  # noqa: E402
from emotrack.lake import Batch, Lake  # noqa: E402
from emotrack.person_baselines import people_jobs  # noqa: E402
from emotrack.settings import Settings  # noqa: E402
from emotrack.units import rescore_videos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each video")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    work = ROOT / "build" / "bench-videos"
    work.mkdir(parents=True, exist_ok=True)
    videos = [
        looped(
            fetch_asset("single_face.mp4", settings.cache_dir),
            args.seconds,
            work / f"single-face-{args.seconds:.0f}s.mp4",
        ),
        looped(
            fetch_asset("WolfgangLanger_Pexels.mp4", settings.cache_dir),
            args.seconds,
            work / f"talking-head-{args.seconds:.0f}s.mp4",
        ),
    ]
    cli = Path(sys.executable).with_name("emotrack")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        archive.mkdir()
        for video in videos:
            (archive / video.name).symlink_to(video)
        lake = Lake(Path(tmp) / "lake")
        started = time.perf_counter()
        subprocess.run(
            [str(cli), "run", str(archive), "--lake", str(lake.root), "--people"],
            check=True,
            capture_output=True,
        )
        run_s = time.perf_counter() - started
        sources = lake.read("baselines")["source"].value_counts().to_dict()
        ids = list(lake.read("videos")["video_id"])
        parts: dict[str, list[float]] = {"find": [], "score": [], "commit": []}
        rescored = 0
        for _ in range(args.repeats):
            started = time.perf_counter()
            jobs = people_jobs(lake, ids)
            found = time.perf_counter()
            results = [r for job in jobs for r in rescore_videos(job, DEFAULT_MODEL, lake.url)]
            scored = time.perf_counter()
            batch = Batch()
            for result in results:
                result.add_to(batch)
            lake.commit(batch)
            lake.store.write_many(
                {f"{REPORT_DIR}/{n}": data for r in results for n, data in r.pages.items()}
            )
            parts["find"].append(found - started)
            parts["score"].append(scored - found)
            parts["commit"].append(time.perf_counter() - scored)
            rescored = len(results)
    medians = {name: statistics.median(times) for name, times in parts.items()}
    step = sum(medians.values())
    print(f"two {args.seconds:.0f}-s videos; resting faces by source: {sources}")
    print(f"whole `emotrack run --people`, start-up in: {run_s:.1f} s")
    print(f"step 3c, {rescored} video(s) scored again (medians of {args.repeats}):")
    for name, seconds in medians.items():
        print(f"  {name:8} {seconds * 1000:8.0f} ms")
    print(f"  {'in all':8} {step * 1000:8.0f} ms: {step / run_s:.1%} of the run")


if __name__ == "__main__":
    main()
