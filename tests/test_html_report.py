"""The HTML report, rendered by a real headless Chromium."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_index_and_a_video_page_render_with_their_plots(nightly_run, render, tmp_path):
    from emotrack.cli import main

    out = tmp_path / "report"
    assert main(["report", "--lake", str(nightly_run.lake.root), "--html", str(out)]) == 0
    index = out / "index.html"
    dom, image = render(index, tmp_path)
    for name in ["single_face.mp4", "smile.mp4", "portrait.mov", "no_face.mp4", "notes.mp4"]:
        assert name in dom, name
    assert "the file is empty" in dom  # a failed file's reason
    assert len(re.findall(r"<polyline", dom)) >= 3  # a valence sparkline per video with faces
    assert image.std() > 10, "the screenshot is blank"

    videos = nightly_run.lake.read("videos").set_index("source_uri")
    smile = videos.loc[str(nightly_run.source / "smile.mp4"), "video_id"]
    dom, image = render(out / f"{smile}.html", tmp_path)
    assert dom.count("<polygon") == 7  # the 7 probabilities, stacked
    charts = dom.count("<svg")  # probabilities, valence..., head pose, blendshapes
    assert charts == 4 and dom.count("time (s)") == charts  # every plot: a time axis
    for label in ("probability", "valence, arousal", "degrees", "score"):  # its y axis
        assert f">{label}</text>" in dom, label
    assert "head pose" in dom and "blendshapes that moved most" in dom
    assert "<rect" in dom and "happy" in dom  # episodes as bands, and in the table
    assert re.search(r'<img src="thumbs/[^"]+\.jpg"', dom)
    assert (out / "thumbs" / f"{smile}-0.jpg").stat().st_size > 1000  # a face, cropped
    assert image.std() > 10
    page = (out / f"{smile}.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from elsewhere
