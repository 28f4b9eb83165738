import io
import threading

from emotrack.progress import RunProgress


def test_plain_lines_per_video_and_figures_from_the_workers_batches() -> None:
    out = io.StringIO()
    progress = RunProgress(3, stream=out, mode="plain")
    progress.started_video("va", "a.mp4", duration_s=10.0, rate=5.0)
    progress.started_video("vb", "b.mp4", duration_s=4.0, rate=5.0)
    threads = [threading.Thread(target=progress.analysed, args=("va", 1)) for _ in range(50)]
    for thread in threads:  # batches arrive from another thread, concurrently
        thread.start()
    for thread in threads:
        thread.join()
    progress.analysed("vb", 20)
    progress.analysed("unknown", 99)  # a late event for a finished video is ignored
    assert progress.frames == 70 and abs(progress.seconds - 14.0) < 1e-9
    assert "a.mp4" in progress.current() and "b.mp4" in progress.current()
    progress.finished_video("va", "a.mp4", "ok", "1 face track(s), mostly happy")
    progress.finished_video(None, "c.mp4", "failed", "probe: the file is empty (0 bytes)")
    assert progress.figures()["eta_s"] > 0  # b.mp4 is still running
    progress.finished_video("vb", "b.mp4", "ok", "0 face track(s), mostly no face")
    assert progress.figures()["eta_s"] == 0
    closing = progress.close()
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["start   a.mp4 (10.0 s of video)", "start   b.mp4 (4.0 s of video)"]
    assert lines[2].startswith("ok      a.mp4: 50 frames in ") and lines[2].endswith("[1/3]")
    assert lines[3] == "failed  c.mp4: probe: the file is empty (0 bytes) [2/3]"
    assert lines[-1] == closing and closing.startswith("analysed 3 of 3 video(s) in ")
    assert ": 14 video-s at " in closing and "\x1b" not in out.getvalue()
