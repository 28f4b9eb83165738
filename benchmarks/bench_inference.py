"""Temporal-model inference: one process vs a Dask LocalCluster, on the same stored features.

    .venv/bin/python benchmarks/bench_inference.py [--videos 40] [--workers 2]

Builds a lake whose `features` hold --videos copies of the real sample's features (run
`make demo` first, or pass --from-lake), then times, in the same run:
- baseline: `score_video` for every video, one after the other, in this process;
- Dask: the same through `score_videos` on a fresh LocalCluster (start-up included) and on
  the warm cluster (models already loaded in each worker).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from emotrack.cluster import dask_client
from emotrack.inference import DEFAULT_MODEL, score_video, score_videos
from emotrack.lake import Lake


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--from-lake", type=Path, default=Path("lake"))
    args = parser.parse_args()
    source = Lake(args.from_lake)
    template = max(
        source.video_ids("features"), key=lambda v: len(source.read_video("features", v))
    )
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp))
        for i in range(args.videos):
            folder = lake.root / "features" / f"video_id=vbench{i:04d}"
            folder.mkdir(parents=True)
            for f in (source.root / "features" / f"video_id={template}").glob("*.parquet"):
                shutil.copyfile(f, folder / f.name)
        jobs = {v: 100 for v in lake.video_ids("features")}
        rows = len(source.read_video("features", template)) * len(jobs)
        print(f"{len(jobs)} videos, {rows} face observations, model {DEFAULT_MODEL}")

        score_video(str(lake.root), next(iter(jobs)), 100, DEFAULT_MODEL)  # load the model
        start = time.perf_counter()
        for video_id, frames in jobs.items():
            score_video(str(lake.root), video_id, frames, DEFAULT_MODEL)
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        with dask_client(None, args.workers) as client:
            done = sum(1 for _ in score_videos(client, lake, jobs, DEFAULT_MODEL))
            cold = time.perf_counter() - start
            start = time.perf_counter()
            done += sum(1 for _ in score_videos(client, lake, jobs, DEFAULT_MODEL))
            warm = time.perf_counter() - start
        assert done == 2 * len(jobs)

    print(
        f"baseline  one process, sequential        {baseline:7.2f} s   "
        f"{1000 * baseline / len(jobs):6.1f} ms/video"
    )
    print(
        f"dask      {args.workers} workers, cold (start-up)     {cold:7.2f} s   "
        f"{cold / baseline:5.2f}x baseline"
    )
    print(
        f"dask      {args.workers} workers, warm                {warm:7.2f} s   "
        f"{warm / baseline:5.2f}x baseline   {baseline / warm:4.2f}x speed-up"
    )


if __name__ == "__main__":
    main()
