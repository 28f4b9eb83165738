"""The nightly deployment, served by `emotrack serve` against an `emotrack server` that asks for
credentials: the served runs and the operator's retry (through the API) carry them."""

import json
import shutil

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from prefect.states import Scheduled

from emotrack.lake import Lake

DEPLOYMENT = "emotrack-nightly/test-nightly"


def _deployment_exists() -> bool:
    with get_client(sync_client=True) as client:
        try:
            return bool(client.read_deployment_by_name(DEPLOYMENT))
        except Exception:
            return False


def _final_state(flow_run_id):
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    return state if state is not None and state.is_final() else None


def test_a_failed_run_retried_from_the_api_redoes_only_what_failed(
    locked_server, asset, tmp_path, faulty_cluster, wait_until, serve_cli
) -> None:
    served = locked_server
    updates = {PREFECT_API_URL: served.api, PREFECT_API_AUTH_STRING: served.auth}
    with temporary_settings(updates=updates):
        _retry_redoes_only_what_failed(
            served, asset, tmp_path, faulty_cluster, wait_until, serve_cli
        )


def _retry_redoes_only_what_failed(
    served, asset, tmp_path, faulty_cluster, wait_until, serve_cli
) -> None:
    archive, lake = tmp_path / "archive", Lake(tmp_path / "lake")
    archive.mkdir()
    for name in ["single_face.mp4", "no_face.mp4"]:
        shutil.copyfile(asset(name), archive / name)
    # The fault, in the Dask workers: one video fails (as on a disk that went away) while
    # this file exists; the operator fixes the cause by deleting it.
    broken = tmp_path / "disk-broken"
    broken.touch()
    address = faulty_cluster(
        "single_face.mp4", RuntimeError("disk unavailable (injected)"), while_exists=broken
    )

    env = {**served.client_env(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    serve_cli("--source", str(archive), "--lake", str(lake.root), "--name", "test-nightly",
              "--dask-address", address, env=env)  # fmt: skip
    wait_until(_deployment_exists, 120, "the served deployment")
    first = run_deployment(DEPLOYMENT, timeout=300)
    assert first.state.is_failed(), first.state
    videos = lake.read("videos")
    assert set(videos["status"]) == {"ok"} and len(videos) == 1  # no_face.mp4 is done
    done_at = videos["processed_at"].tolist()
    done_files = {p: p.stat().st_mtime_ns for p in (lake.root / "videos").glob("*.parquet")}

    broken.unlink()  # the operator fixes the cause, then retries the run
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(first.id, Scheduled(), force=True)
    state = wait_until(lambda: _final_state(first.id), 300, "the retried run")
    assert state.is_completed(), state
    videos = lake.read("videos").set_index("source_uri")
    assert len(videos) == 2 and len(lake.read("summaries")) == 2
    assert videos.loc[[str(archive / "no_face.mp4")], "processed_at"].tolist() == done_at
    for path, mtime in done_files.items():  # the completed video was not redone
        assert path.stat().st_mtime_ns == mtime
    with get_client(sync_client=True) as client:
        artifacts = [a for a in client.read_artifacts() if a.flow_run_id == first.id]
    assert {"emotrack-run-videos", "emotrack-run-summary"} <= {a.key for a in artifacts}
    tables = sorted(
        (a for a in artifacts if a.key == "emotrack-run-videos"), key=lambda a: a.created
    )
    retried = json.loads(tables[-1].data) if isinstance(tables[-1].data, str) else tables[-1].data
    assert [row["video"] for row in retried] == ["single_face.mp4"]
