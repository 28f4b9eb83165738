"""The heavy stage on a real Dask cluster: `dask scheduler` and two `dask worker` processes."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from dask.distributed import Client

from emotrack.cluster import WORKER_ENV
from emotrack.lake import Lake

VIDEOS = ["single_face.mp4", "no_face.mp4", "WolfgangLanger_Pexels.mp4"]


@pytest.fixture
def dask_cluster(tmp_path):
    """The address of a scheduler with two single-threaded workers, each its own process."""
    bin_dir = Path(sys.executable).parent
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                bin_dir / "dask",
                "scheduler",
                "--scheduler-file",
                info,
                "--port",
                "0",
                "--no-dashboard",
            ],
            **quiet,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        env = {**os.environ, **WORKER_ENV}
        for name in ("w1", "w2"):
            worker = [bin_dir / "dask", "worker", address, "--nthreads", "1", "--name", name]
            procs.append(subprocess.Popen([*worker, "--no-dashboard"], env=env, **quiet))
        with Client(address) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_features_are_computed_in_the_dask_workers(
    prefect_server, dask_cluster, asset, tmp_path, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    import emotrack.units

    def not_here(*args, **kwargs):
        raise AssertionError("the flow's own process must not analyse videos")

    monkeypatch.setattr(emotrack.units, "extract_features", not_here)
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in VIDEOS:
        shutil.copyfile(asset(name), archive / name)
    lake = Lake(tmp_path / "lake")
    counts = nightly(source=str(archive), lake=str(lake.root), dask_address=dask_cluster)
    assert counts == {"ok": len(VIDEOS)}
    assert len(lake.video_ids("features")) == len(VIDEOS) - 1  # no_face.mp4 has no face rows
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    with Client(dask_cluster) as client:
        pids = client.run(os.getpid)
        cnns = client.run(_cnns_loaded)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert sum(cnns.values()) >= 1 and set(cnns.values()) <= {0, 1}  # loaded once per worker


def _cnns_loaded() -> int:
    """In a worker: how many expression CNNs this process has loaded."""
    from emotrack.models.expression_cnn import load_expression_features

    return load_expression_features.cache_info().currsize
