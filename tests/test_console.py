"""What `emotrack run` prints: quiet plain lines in a pipe, a live display on a terminal, and
everything again with -v. The Prefect API keeps every INFO line either way."""

import os
import re
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter
from prefect.settings import PREFECT_API_URL

from emotrack.lake import Lake

CLI = Path(sys.executable).with_name("emotrack")
NATIVE_NOISE = re.compile(r"^[IWE]\d{4} |cuda|cuInit|absl|XNNPACK|oneDNN", re.M | re.I)
DASK_INFO = re.compile(r"INFO .*distributed\.|distributed\.\w+ - INFO", re.M)


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("EMOTRACK_LOG_LEVEL", "EMOTRACK_PROGRESS")
    }
    return {**env, "PREFECT_API_URL": str(PREFECT_API_URL.value())}


def _run(*args: str) -> str:
    done = subprocess.run(
        [str(CLI), *args], env=_env(), capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout + done.stderr


def test_piped_output_is_plain_quiet_and_names_every_video(prefect_server, four_clips, tmp_path):
    lake = tmp_path / "lake"
    out = _run("run", str(four_clips), "--lake", str(lake))

    assert not NATIVE_NOISE.search(out), NATIVE_NOISE.search(out)
    assert not DASK_INFO.search(out) and "Finished in state" not in out
    assert "\x1b[" not in out  # no escape codes in a pipe
    for name in ["single_face.mp4", "no_face.mp4", "WolfgangLanger_Pexels.mp4"]:
        assert re.search(rf"^start +{name}", out, re.M) and re.search(rf"^ok +{name}", out, re.M)
    assert re.search(r"^failed +notes\.mp4: probe: ", out, re.M)
    assert re.search(r"analysed 4 of 4 video\(s\) in [\d.]+ s: \d+ video-s at", out)
    assert re.search(r"the run took [\d.]+ s in all", out)

    with get_client(sync_client=True) as client:  # the API still has the tasks' INFO lines
        (flow_run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"nightly {four_clips}"]))
        )
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [flow_run.id]}))
    infos = [log.message for log in logs if log.level == 20]
    assert any("committed" in m for m in infos) and any("video 4 of 4" in m for m in infos)

    talk = Lake(lake).read("videos").query("source_uri.str.endswith('WolfgangLanger_Pexels.mp4')")
    episodes = Lake(lake).read("episodes")  # the talking head has expression episodes
    assert len(episodes[episodes["video_id"] == talk["video_id"].iloc[0]]) > 0
    assert (lake / "_report" / "index.html").exists()  # and the run wrote its HTML report
    assert re.search(r"^pages: +/.*/_report/index.html$", out, re.M)  # and says where


def test_a_terminal_gets_a_live_display_that_reaches_the_total(
    prefect_server, four_clips, tmp_path
):
    lake = tmp_path / "lake"
    command = f"{CLI} run {four_clips} --lake {lake}"
    typescript = tmp_path / "typescript"
    subprocess.run(
        ["script", "-qfec", command, str(typescript)],
        env={**_env(), "COLUMNS": "160"},
        stdout=subprocess.DEVNULL,
        timeout=300,
        check=True,
    )
    screen = typescript.read_text(errors="replace")
    assert "\x1b[" in screen and "videos" in screen  # drawn with rich, redrawn in place
    assert re.search(r"4/4\S* \d+ frames/s", screen)  # it reached the total, with figures
    assert re.search(r"ok +single_face\.mp4: 12 frames in", screen)  # a line per video
    assert not NATIVE_NOISE.search(screen)


def test_verbose_brings_everything_back(prefect_server, four_clips, tmp_path):
    out = _run("-v", "run", str(four_clips), "--lake", str(tmp_path / "lake"))
    assert "Finished in state Completed()" in out  # Prefect's INFO lines
    assert NATIVE_NOISE.search(out)  # TensorFlow's or LiteRT's own lines
