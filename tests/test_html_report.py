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
    charts = dom.count("<svg")  # probabilities, valence..., head pose, blendshapes, AUs
    assert charts == 5 and dom.count("time (s)") == charts  # every plot: a time axis
    for label in ("probability", "valence, arousal", "degrees", "score", "activity"):
        assert f">{label}</text>" in dom, label  # its y axis
    assert "head pose" in dom and "blendshapes that moved most" in dom
    aus = dom[dom.index("<title>the action units that moved most</title>") :]
    aus = aus[: aus.index("</p>")]  # the AU chart and its legend
    assert aus.count("<polyline") >= 5  # 5 AUs drawn
    named = re.findall(r"AU(\d\d) ([a-z ]+) \((\d\.\d\d)\)", aus)
    assert len(named) == 5, named  # named in the legend, with how far each moved
    # The man in single_face.mp4 breaks into a smile: AU12 moves most.
    talking = videos.loc[str(nightly_run.source / "single_face.mp4"), "video_id"]
    dom, image = render(out / f"{talking}.html", tmp_path)
    aus = dom[dom.index("<title>the action units that moved most</title>") :]
    first = re.search(r"AU(\d\d) ([a-z ]+) \((\d\.\d\d)\)", aus)
    assert first and first.group(1, 2) == ("12", "lip corner puller"), first
    assert float(first.group(3)) > 0.5 and image.std() > 10
    assert "<rect" in dom and "happy" in dom  # episodes as bands, and in the table
    assert re.search(r'<img src="thumbs/[^"]+\.jpg"', dom)
    assert (out / "thumbs" / f"{smile}-0.jpg").stat().st_size > 1000  # a face, cropped
    assert image.std() > 10
    page = (out / f"{smile}.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from elsewhere
