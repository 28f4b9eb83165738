"""A storage error stops `run`, `rescore` and `train` alike; a full disk under the lake is
one. Each command runs as a user runs it (its own process, its own Prefect server), on a
machine without ~/.prefect."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emotrack.errors import StorageError
from emotrack.lake import Lake
from emotrack.scoring import MODEL_VERSION as CNN_PER_FRAME
from emotrack.settings import Settings

EMOTRACK = str(Path(sys.executable).with_name("emotrack"))


@dataclass
class Machine:
    """A fresh user's machine: an empty home, emotrack's cache of verified assets."""

    home: Path
    env: dict[str, str]

    def emotrack(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [EMOTRACK, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def machine(tmp_path: Path, settings: Settings) -> Machine:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMOTRACK_"))}
    env |= {
        "HOME": str(home),
        "EMOTRACK_CACHE_DIR": str(settings.cache_dir),
        "EMOTRACK_PROGRESS": "plain",
    }
    return Machine(home, env)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 64 MB tmpfs of its own (mounting it needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte; returns the file that does it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (2**20, 2**12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def _stopped_on_full_disk(done: subprocess.CompletedProcess, lake: Path) -> None:
    console = done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, console
    assert last.startswith("emotrack: the run stopped: the disk is full under"), console
    assert str(lake) in last
    assert "Traceback" not in console and "panicked" not in console, console


def test_a_full_disk_stops_run_rescore_and_train_and_nothing_is_lost(
    nightly_run, asset, make_clip, machine, small_disk, labelled_dataset, tmp_path, prefect_server
) -> None:
    from emotrack.flows.train import train

    lake = small_disk / "lake"
    shutil.copytree(nightly_run.lake.root, lake)
    new = tmp_path / "new"
    new.mkdir()
    shutil.copyfile(make_clip(2, 10, name="pattern.mp4"), new / "pattern.mp4")
    filler = _fill(small_disk)

    # run: the video is analysed, its commit fails
    _stopped_on_full_disk(machine.emotrack("run", str(new), "--lake", str(lake)), lake)
    # rescore: its commit fails
    done = machine.emotrack("rescore", "--lake", str(lake), "--model", CNN_PER_FRAME)
    _stopped_on_full_disk(done, lake)
    # train (the same flow start as the commands above, here in this process): the
    # features of the video the lake lacks cannot be committed
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copyfile(make_clip(3, 10, name="talk.mp4"), videos / "talk.mp4")
    shutil.copyfile(nightly_run.source / "smile.mp4", videos / "smile.mp4")
    shutil.copyfile(asset("single_face.mp4"), videos / "single_face.mp4")
    ann = labelled_dataset(tmp_path, {p.stem: p for p in videos.iterdir()})
    with pytest.raises(StorageError, match="the disk is full under"):
        train(
            annotations=str(ann),
            videos=str(videos),
            lake=str(lake),
            name="full-disk-gru",
            epochs=1,
            settings=Settings(geometry=False),
        )
    assert not (lake / "_models" / "full-disk-gru").exists()

    # nothing was lost: with room again, the same rescore works (the first one that worked
    # on this machine, which has no ~/.prefect) and leaves no Prefect database in the home
    filler.unlink()
    before, now = (Lake(root).read("videos") for root in (nightly_run.lake.root, lake))
    assert sorted(now["video_id"]) == sorted(before["video_id"])  # not one more, nor less
    done = machine.emotrack("rescore", "--lake", str(lake), "--model", CNN_PER_FRAME)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rescored" in done.stdout
    assert set(Lake(lake).read("summaries")["model_version"]) == {CNN_PER_FRAME}
    assert not (machine.home / ".prefect" / "prefect.db").exists()
