"""What object storage costs: `emotrack run` on the same clips from disk into a lake on disk,
then from a bucket into a lake in a bucket, in one run.

    make bench      (or: .venv/bin/python benchmarks/bench_object_storage.py [--clips 50])

The S3 server is moto_server on 127.0.0.1, on the same cores as the run (it is the only S3
server here): the ratio includes its CPU, not a network's latency. Figures:
- a first run over N clips (2-10 s each, cut from the talking head), disk vs S3;
- a second run over the unchanged archive (nothing to do: listing, planning, the report),
  disk vs S3; the S3 one downloads no video;
- the peak PSS of each run's process tree.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import BIN, ROOT, clips, looped, timed  # noqa: E402

from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.settings import Settings  # noqa: E402


def moto_server() -> tuple[subprocess.Popen, dict[str, str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return server, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50)
    args = parser.parse_args()
    work = ROOT / "build" / "bench-videos"
    work.mkdir(parents=True, exist_ok=True)
    source = fetch_asset("WolfgangLanger_Pexels.mp4", Settings().cache_dir)
    long_video = looped(source, 1800, work / "talking-head-1800s.mp4")
    videos = clips(long_video, args.clips, work / "clips-1.0")
    size = sum(v.stat().st_size for v in videos)
    server, env = moto_server()
    try:
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL"], key="bench", secret="bench")
        fs.mkdir("archive")
        fs.mkdir("lake")
        for video in videos:
            fs.put_file(str(video), f"archive/in/{video.name}")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "archive"
            folder.mkdir()
            for video in videos:
                os.link(video, folder / video.name)
            disk = [BIN / "emotrack", "run", folder, "--lake", Path(tmp) / "lake"]
            bucket = [BIN / "emotrack", "run", "s3://archive/in", "--lake", "s3://lake/l"]
            first_disk, _, pss_disk = timed(disk, env)
            first_s3, _, pss_s3 = timed(bucket, env)
            again_disk, _, _ = timed(disk, env)
            again_s3, _, _ = timed(bucket, env)
    finally:
        server.terminate()
        server.wait()
    print(f"\n{len(videos)} clips, {size / 2**20:.0f} MiB; S3: moto_server on 127.0.0.1\n")
    print(f"{'what':48} {'disk':>9} {'S3':>9} {'ratio':>7}")
    rows = [
        ("first run (all clips analysed)", first_disk, first_s3, "s"),
        ("second run (nothing to do)", again_disk, again_s3, "s"),
        ("peak PSS of the first run", pss_disk / 2**20, pss_s3 / 2**20, "MiB"),
    ]
    for what, a, b, unit in rows:
        print(f"{what:48} {a:7.1f} {unit:<3}{b:7.1f} {unit:<3}{b / a:6.2f}x")


if __name__ == "__main__":
    main()
