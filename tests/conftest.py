"""Shared fixtures: pinned real assets, clips made with real ffmpeg, one Prefect server."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from distributed import WorkerPlugin

from emotrack.assets import fetch_asset
from emotrack.lake import Lake
from emotrack.settings import Settings
from emotrack.video import VideoSource


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def asset(settings: Settings) -> Callable[[str], Path]:
    """Path to a pinned, SHA-256-verified asset (fetched once, then cached)."""
    return lambda name: fetch_asset(name, settings.cache_dir)


H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def run_ffmpeg() -> Callable[..., None]:
    """ffmpeg with the given arguments (quiet, overwriting); raises if it fails."""
    return ffmpeg


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build an H.264 test-pattern clip with ffmpeg: make_clip(seconds, fps, size, name)."""
    folder = tmp_path_factory.mktemp("clips")

    def make(seconds: float, fps: float, size: str = "160x96", name: str = "clip.mp4") -> Path:
        path = folder / name
        pattern = f"testsrc2=size={size}:rate={fps}:duration={seconds}"
        ffmpeg("-f", "lavfi", "-i", pattern, *H264, str(path))
        return path

    return make


@pytest.fixture(scope="session")
def face_clips(tmp_path_factory: pytest.TempPathFactory, asset) -> Callable[[Path, range], None]:
    """face_clips(folder, numbers): one-second real-face clips face-NNN.mp4 in folder, the
    first second of single_face.mp4, each made unique (its own content id) by an ISO-BMFF
    `free` box with its number appended, which players and ffmpeg skip."""
    first_second = tmp_path_factory.mktemp("face-clip") / "first-second.mp4"
    ffmpeg("-i", str(asset("single_face.mp4")), "-t", "1", "-c", "copy", "-an", str(first_second))
    body = first_second.read_bytes()

    def make(folder: Path, numbers: range) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for i in numbers:
            tag = f"emotrack test clip {i}".encode()
            box = (8 + len(tag)).to_bytes(4, "big") + b"free" + tag
            (folder / f"face-{i:03d}.mp4").write_bytes(body + box)

    return make


@pytest.fixture(scope="session")
def ten_hours_clip(tmp_path_factory: pytest.TempPathFactory, asset) -> Path:
    """Two gray frames ten hours apart: 36001 s claimed in about 1.5 KB."""
    path = tmp_path_factory.mktemp("claims") / "ten-hours.mp4"
    gap = "setpts='if(eq(N,1),36000/TB,PTS)'"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:size=160x96:rate=1:duration=2",
        "-vf",
        gap,
        "-fps_mode",
        "passthrough",
        *H264,
        str(path),
    )
    return path


@pytest.fixture(scope="session")
def huge_clip(tmp_path_factory: pytest.TempPathFactory, asset) -> Path:
    """8192x8192 pixels in a few hundred KB (2 s at 5 fps): one face of about 1000 px in
    the middle of a gray frame."""
    path = tmp_path_factory.mktemp("huge") / "huge.mp4"
    frame = "scale=1200:-2,pad=8192:8192:(ow-iw)/2:(oh-ih)/2:color=gray"
    ffmpeg(
        "-loop",
        "1",
        "-i",
        str(asset("happy_face.jpg")),
        "-vf",
        frame,
        "-t",
        "2",
        "-r",
        "5",
        *H264,
        str(path),
    )
    return path


@pytest.fixture(scope="session")
def photo_clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A 3 s, 25 fps, 480x640 clip of a photo that slowly zooms in: a real face that moves.

    With phone=True the pixels are stored sideways (turned clockwise) with a display matrix
    that turns them back, as phones record portrait video.
    """
    folder = tmp_path_factory.mktemp("photo_clips")

    def make(photo: Path, name: str, phone: bool = False) -> Path:
        path = folder / name
        frames = (
            "scale=400:400,pad=480:640:40:120:color=gray,"
            "zoompan=z='1+0.002*on':d=1:s=480x640:fps=25"
        )
        stored = folder / f"stored-{name}" if phone else path
        turn = ",transpose=1" if phone else ""
        ffmpeg("-loop", "1", "-i", str(photo), "-vf", frames + turn, "-t", "3", *H264, str(stored))
        if phone:
            ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
            stored.unlink()
        return path

    return make


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server (with its own database) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@dataclass(frozen=True)
class Served:
    """An `emotrack server` of a test: its API, and the file of its credentials (if any)."""

    api: str
    auth: str | None
    auth_file: Path | None
    process: subprocess.Popen

    def client_env(self, with_auth: bool = True) -> dict[str, str]:
        """The environment of a command that talks to this server."""
        import os

        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_AUTH_STRING",)}
        env["PREFECT_API_URL"] = self.api
        env.pop("EMOTRACK_API_AUTH_FILE", None)
        if with_auth and self.auth_file is not None:
            env["EMOTRACK_API_AUTH_FILE"] = str(self.auth_file)
        return env


@pytest.fixture(scope="session")
def locked_server(emotrack_server) -> Served:
    """An `emotrack server` with credentials (recognisable, so that a test can search every
    output for them), for the session."""
    return emotrack_server(auth="ops:fake-auth-DoNotLeak-42")


@pytest.fixture(scope="session")
def emotrack_server(tmp_path_factory) -> Iterator[Callable[..., Served]]:
    """emotrack_server(auth=None, *options, **env): `emotrack server` (the real command) on
    a free port other than 4200, with a database of its own (or `--database-url` among
    the options), credentials `auth` ("user:password") if given, and these variables set;
    one per such set-up for the session (a server takes 10-20 s to start), stopped at its
    end."""
    import os
    import socket
    import time
    import urllib.request

    started: dict[tuple, Served] = {}

    def start(auth: str | None = None, *options: str, **variables: str) -> Served:
        key = (auth, options, tuple(sorted(variables.items())))
        if key in started:
            return started[key]
        home = tmp_path_factory.mktemp("prefect-home")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cli = str(Path(sys.executable).with_name("emotrack"))
        command = [cli, "server", "--port", str(port), *options]
        auth_file = None
        if auth is not None:
            auth_file = home / "credentials"
            auth_file.write_text(auth + "\n")
            auth_file.chmod(0o600)
            command += ["--auth-file", str(auth_file)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env["PREFECT_HOME"] = str(home)  # its own SQLite database
        env.update(variables)
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.3)
        started[key] = Served(api, auth, auth_file, process)
        return started[key]

    yield start
    for served in started.values():
        stop_session(served.process)


def stop_session(process: subprocess.Popen) -> None:
    """End a command started in its own session, and what it started: SIGTERM, then SIGKILL
    after 30 s."""
    import os
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def serve_cli() -> Iterator[Callable[..., subprocess.Popen]]:
    """serve_cli(*args, env=..., log=None): `emotrack serve ARGS` in its own session, its
    output into the file `log` (or nowhere); stopped at the test's end."""
    started: list[subprocess.Popen] = []
    cli = str(Path(sys.executable).with_name("emotrack"))

    def start(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
        with ExitStack() as files:
            out = files.enter_context(log.open("w")) if log else subprocess.DEVNULL
            started.append(
                subprocess.Popen(
                    [cli, "serve", *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return started[-1]

    yield start
    for process in started:
        stop_session(process)


class InjectFault(WorkerPlugin):
    """A Dask worker plugin: extract_features fails for the video `name` (fault injection in
    the worker processes). It raises `error`, or, without one, takes `hog_gb` GB of memory
    and holds it; with `once`, only while the file `once` is absent (then it creates it);
    with `while_exists`, only while that file exists (an operator fixes the cause by
    deleting it)."""

    def __init__(
        self,
        name: str,
        error: Exception | None,
        once: Path | None = None,
        hog_gb: float = 0,
        while_exists: Path | None = None,
    ) -> None:
        self.name, self.error, self.once, self.hog_gb = name, error, once, hog_gb
        self.while_exists = while_exists

    def setup(self, worker: object) -> None:
        import time

        import numpy as np

        import emotrack.units

        real = emotrack.units.extract_features

        def faulty(source, *args, **kwargs):
            fires = source.name == self.name and not (self.once and self.once.exists())
            if self.while_exists is not None:
                fires = source.name == self.name and self.while_exists.exists()
            if fires:
                if self.once:
                    self.once.touch()
                if self.error is not None:
                    raise self.error
                hog = np.ones(int(self.hog_gb * 2**30), np.uint8)  # touched: resident
                time.sleep(60)  # the nanny ends the worker long before this
                return hog
            return real(source, *args, **kwargs)

        emotrack.units.extract_features = faulty


@pytest.fixture
def faulty_cluster() -> Iterator[Callable[..., str]]:
    """faulty_cluster(name, error, once=None, hog_gb=0, memory_limit_gb=None,
    while_exists=None): the address of a new 2-worker cluster, made as the flow makes its
    own, whose workers carry InjectFault(...); pass it to the flow as dask_address."""
    import sys

    import cloudpickle

    from emotrack.cluster import dask_client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    stack = ExitStack()

    def start(
        name: str,
        error: Exception | None,
        once: Path | None = None,
        hog_gb: float = 0,
        memory_limit_gb: float | None = None,
        while_exists: Path | None = None,
    ) -> str:
        client = stack.enter_context(dask_client(None, 2, memory_limit_gb))
        fault = InjectFault(name, error, once, hog_gb, while_exists)
        client.register_plugin(fault, name="inject-fault")
        return client.scheduler.address

    with stack:
        yield start


@pytest.fixture(scope="session")
def start_cli() -> Callable[[Path, Lake, dict[str, str]], subprocess.Popen]:
    """start_cli(archive, lake, env): `emotrack run` in a process of its own (own session,
    output discarded), as cron or systemd would start it."""
    cli = Path(sys.executable).with_name("emotrack")

    def start(archive: Path, lake: Lake, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            [str(cli), "run", str(archive), "--lake", str(lake.root)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    return start


@dataclass(frozen=True)
class NightlyRun:
    source: Path
    lake: Lake
    counts: dict[str, int]
    flow_run_id: object


@pytest.fixture
def four_clips(asset, tmp_path) -> Path:
    """Three real sample videos and a text file named .mp4: a run prints one line for each."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for name in ["single_face.mp4", "no_face.mp4", "WolfgangLanger_Pexels.mp4"]:
        shutil.copyfile(asset(name), folder / name)
    (folder / "notes.mp4").write_text("not a video\n")
    return folder


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """wait_until(predicate, seconds, what): the predicate's first truthy value, asked every
    0.5 s; an AssertionError naming `what` after `seconds`."""
    import time

    def wait(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    return wait


@pytest.fixture(scope="session")
def archive(tmp_path_factory, asset, photo_clip) -> Path:
    """Real clips, a sideways phone clip, a zero-byte file and a text file named .mp4."""
    folder = tmp_path_factory.mktemp("archive")
    for name in ["single_face.mp4", "no_face.mp4"]:
        shutil.copyfile(asset(name), folder / name)
    shutil.copyfile(photo_clip(asset("happy_face.jpg"), "smile.mp4"), folder / "smile.mp4")
    (folder / "phone").mkdir()
    phone = photo_clip(asset("happy_face.jpg"), "portrait.mov", phone=True)
    shutil.copyfile(phone, folder / "phone" / "portrait.mov")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("meeting notes, not a video\n")
    (folder / "README.txt").write_text("not a video suffix: ignored\n")
    return folder


@pytest.fixture(scope="session")
def nightly_run(prefect_server, archive, tmp_path_factory) -> NightlyRun:
    """The real nightly flow, run once through the session's Prefect server."""
    from emotrack.flows.nightly import nightly

    lake = Lake(tmp_path_factory.mktemp("lake"))
    state = nightly(source=str(archive), lake=str(lake.root), return_state=True)
    assert state.is_completed(), state
    return NightlyRun(archive, lake, state.result(), state.state_details.flow_run_id)


@pytest.fixture(scope="session")
def level_lakes(prefect_server, asset, photo_clip, tmp_path_factory) -> dict[str, Path]:
    """Lakes of the same two real videos, one per storage level (emotrack run --store)."""
    from emotrack.flows.nightly import nightly

    archive = tmp_path_factory.mktemp("levels-archive")
    shutil.copyfile(asset("single_face.mp4"), archive / "single_face.mp4")
    shutil.copyfile(photo_clip(asset("happy_face.jpg"), "smile.mp4"), archive / "smile.mp4")
    lakes = {}
    for level in ("full", "geometry", "labels"):
        lakes[level] = tmp_path_factory.mktemp(f"lake-{level}") / "lake"
        counts = nightly(source=str(archive), lake=str(lakes[level]), store=level)
        assert counts == {"ok": 2}, counts
    return lakes


@dataclass(frozen=True)
class S3:
    """A real S3 server for the tests: its endpoint, and buckets made on demand."""

    endpoint: str

    def bucket(self, name: str) -> str:
        """A new bucket (named `name` and a unique suffix); returns its name."""
        import uuid

        import s3fs

        bucket = f"{name}-{uuid.uuid4().hex[:8]}"
        s3fs.S3FileSystem(endpoint_url=self.endpoint).mkdir(bucket)
        return bucket

    def fs(self) -> object:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, use_listings_cache=False)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto_server (from moto[server]) on 127.0.0.1 for the whole session; the AWS_*
    variables point at it, in this process and in the Dask workers and commands it starts."""
    import os
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "moto_server failed"
            time.sleep(0.2)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield S3(endpoint)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.terminate()
        server.wait()


AFFWILD_HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"


def _write(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def _dataset(root: Path, videos: dict[str, Path]) -> Path:
    """Annotations for the videos talk, smile (train) and single_face (validation): EXPR in
    Aff-Wild2's folder names, VA in ABAW's."""
    ann = root / "annotations"
    frames = {
        name: math.ceil(VideoSource.from_path(path).duration_s * VideoSource.from_path(path).fps)
        for name, path in videos.items()
    }
    n = frames["talk"]  # neutral, an unannotated stretch, and a stretch of Other
    expr = ["0"] * (n // 2) + ["-1"] * (n // 4) + ["7"] * (n - n // 2 - n // 4)
    _write(ann / "EXPR_Set" / "Train_Set" / "talk.txt", AFFWILD_HEADER, expr)
    va = [
        f"{0.1 + 0.3 * math.sin(i / 40):.3f},{-0.2 + 0.2 * math.cos(i / 30):.3f}" for i in range(n)
    ]
    va[n // 3 : n // 3 + 25] = ["-5,-5"] * 25
    _write(ann / "VA_Estimation_Challenge" / "Train_Set" / "talk.txt", "valence,arousal", va)
    n = frames["smile"]
    _write(ann / "EXPR_Set" / "Train_Set" / "smile.txt", AFFWILD_HEADER, ["4"] * n)
    va = [f"{0.6 + 0.2 * i / n:.3f},{0.3 + 0.1 * i / n:.3f}" for i in range(n)]
    _write(ann / "VA_Estimation_Challenge" / "Train_Set" / "smile.txt", "valence,arousal", va)
    n = frames["single_face"]  # validation: neutral, then happy
    _write(
        ann / "EXPR_Set" / "Validation_Set" / "single_face.txt",
        AFFWILD_HEADER,
        ["0"] * (n // 2) + ["4"] * (n - n // 2),
    )
    va = [f"{-0.2 + 0.6 * i / n:.3f},{0.1 * i / n:.3f}" for i in range(n)]
    _write(
        ann / "VA_Estimation_Challenge" / "Validation_Set" / "single_face.txt",
        "valence,arousal",
        va,
    )
    return ann


@pytest.fixture(scope="session")
def labelled_dataset() -> Callable[[Path, dict[str, Path]], Path]:
    """labelled_dataset(root, {"talk": path, "smile": path, "single_face": path}): an
    Aff-Wild2-format annotation folder for those videos, written under root."""
    return _dataset


@pytest.fixture(scope="session")
def render() -> Callable[[Path, Path], tuple[str, Any]]:
    """render(page, folder): (the DOM after rendering, a screenshot as an image) of a page
    opened from disk by a real headless Chromium, offline (Debian's, installed if missing)."""
    import cv2

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["bash", str(root / "scripts" / "ensure-debian.sh"), "chromium", "chromium"],
        capture_output=True,
        text=True,
    )
    chromium = shutil.which("chromium")
    if done.returncode != 0 or chromium is None:
        pytest.skip(f"chromium could not be installed: {done.stderr.strip()}")
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,900"]

    def open_page(page: Path, folder: Path) -> tuple[str, Any]:
        dom = subprocess.run(
            [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
        ).stdout
        shot = folder / f"{page.stem}.png"
        subprocess.run(
            [*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120
        )
        image = cv2.imread(str(shot))
        assert image is not None, "no screenshot"
        return dom, image

    return open_page
