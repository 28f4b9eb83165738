"""`emotrack serve --notify URL`: a Prefect automation posts to a webhook (a small HTTP
receiver on loopback) when a nightly run fails, or ends with more failed videos than the
threshold; a clean night posts nothing; the URL stays a secret. `--maintenance-cron`: the
lake's upkeep as a second deployment, which the nightly then leaves to it."""

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from emotrack.lake import Lake
from emotrack.notify import FAILED_VIDEOS_EVENT, SECRET_BLOCK, WEBHOOK_BLOCK

NIGHTLY = "emotrack-nightly/notify-nightly"
MAINTENANCE = "emotrack-maintenance/notify-nightly-maintenance"
TOKEN = "hook-token-DoNotPrint-7"


class Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[float, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((time.monotonic(), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/{TOKEN}"
    server.shutdown()


def _deployment(name: str):
    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name)
        except Exception:
            return None


def test_bad_nights_post_to_the_webhook_and_a_clean_night_does_not(
    locked_server, receiver, asset, tmp_path, wait_until, serve_cli
):
    served = locked_server
    clean, bad = tmp_path / "clean", tmp_path / "bad"
    for folder in (clean, bad):
        folder.mkdir()
        shutil.copyfile(asset("no_face.mp4"), folder / "no_face.mp4")
    for name in ("notes.mp4", "minutes.mp4"):  # 2 failed videos: more than the threshold, 1
        (bad / name).write_text(f"{name}: not a video\n")
    lake = Lake(tmp_path / "lake")
    log = tmp_path / "serve.log"
    env = {**served.client_env(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    serve_cli("--source", str(clean), "--lake", str(lake.root), "--name", "notify-nightly",
              "--workers", "1", "--notify", receiver, "--notify-failed-videos", "1",
              "--maintenance-cron", "0 5 * * 0", env=env, log=log)  # fmt: skip
    updates = {PREFECT_API_URL: served.api, PREFECT_API_AUTH_STRING: served.auth}
    with temporary_settings(updates=updates):
        wait_until(lambda: _deployment(NIGHTLY) and _deployment(MAINTENANCE), 120, "deployments")
        _bad_nights_post(clean, bad, tmp_path, lake, wait_until)
    assert TOKEN not in log.read_text()  # serve never prints the URL


def _bad_nights_post(clean: Path, bad: Path, tmp_path: Path, lake: Lake, wait_until) -> None:
    nightly = _deployment(NIGHTLY)
    assert nightly.parameters["maintenance"] is False  # the maintenance deployment does it
    assert nightly.parameters["failed_videos_alert"] == 1

    quiet = run_deployment(NIGHTLY, timeout=300)
    assert quiet.state.is_completed(), quiet.state
    noisy = run_deployment(NIGHTLY, parameters={"source": str(bad)}, timeout=300)
    assert noisy.state.is_completed(), noisy.state
    ended = time.monotonic()
    wait_until(lambda: len(Receiver.posts) >= 1, 60, "the failed-videos post")
    at, post = Receiver.posts[0]
    print(f"failed-videos post {at - ended:.1f} s after the run ended")
    assert at - ended < 60
    assert post["event"] == FAILED_VIDEOS_EVENT and str(noisy.id) in post["resource"]
    assert post["failed_videos"] == "2" and post["threshold"] == "1"

    broken = run_deployment(NIGHTLY, parameters={"source": str(tmp_path / "gone")}, timeout=300)
    assert broken.state.is_failed(), broken.state
    ended = time.monotonic()
    wait_until(lambda: len(Receiver.posts) >= 2, 60, "the failed-run post")
    at, post = Receiver.posts[1]
    print(f"failed-run post {at - ended:.1f} s after the run ended")
    assert at - ended < 60
    assert post["event"] == "prefect.flow-run.Failed"
    assert post["resource"] == f"prefect.flow-run.{broken.id}"

    upkeep = run_deployment(MAINTENANCE, timeout=300)
    assert upkeep.state.is_completed(), upkeep.state
    time.sleep(5)  # anything late would have come by now
    assert len(Receiver.posts) == 2  # each bad night once; the clean night and upkeep: none
    assert not any(str(quiet.id) in json.dumps(post) for _, post in Receiver.posts)
    assert len(lake.read("videos")) == 3  # no_face.mp4 once, and the two failed files

    with get_client(sync_client=True) as client:  # the URL: masked, and in no run's log
        for name, slug in [(SECRET_BLOCK, "secret"), (WEBHOOK_BLOCK, "webhook")]:
            block = client.read_block_document_by_name(name, slug, include_secrets=False)
            assert TOKEN not in json.dumps(block.data, default=str), name
        ids = [quiet.id, noisy.id, broken.id, upkeep.id]
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": ids}))
    assert len(runs) == 4 and logs
    assert not any(TOKEN in entry.message for entry in logs)
    assert any("more than the threshold of 1" in entry.message for entry in logs)
