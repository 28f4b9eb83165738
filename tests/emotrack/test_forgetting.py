from datetime import UTC, datetime, timedelta

import pandas as pd

from emotrack.forgetting import Targets, expired, resolve
from emotrack.lake import Batch, Lake
from emotrack.schema import row

KNOWN = pd.DataFrame(
    {
        "video_id": ["va", "va", "vb", None, "vc"],
        "uri": ["/in/x/a.mp4", "/in/y/a-copy.mp4", "/in/x/b.mp4", "/in/x/broken.mp4", "/in/z.mp4"],
    }
)


def test_a_video_id_brings_every_file_that_held_its_content() -> None:
    assert resolve(KNOWN, ["va"]) == Targets(("va",), ("/in/x/a.mp4", "/in/y/a-copy.mp4"))


def test_a_prefix_brings_its_files_their_contents_and_their_other_copies() -> None:
    found = resolve(KNOWN, prefix="/in/x/")
    assert found.video_ids == ("va", "vb")
    assert found.uris == ("/in/x/a.mp4", "/in/x/b.mp4", "/in/x/broken.mp4", "/in/y/a-copy.mp4")


def test_what_the_lake_does_not_know_is_nothing_to_forget() -> None:
    assert not resolve(KNOWN, ["vzz"], prefix="/elsewhere/")
    assert resolve(KNOWN, ["vzz", "vc"]) == Targets(("vc",), ("/in/z.mp4",))


def test_expired_takes_videos_and_failures_older_than_the_limit(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    with lake.writing():
        now = datetime.now(UTC)
        old, new = now - timedelta(days=40), now - timedelta(days=2)
        batch = Batch()
        videos = [("vold", "/in/old.mp4", old), ("vnew", "/in/new.mp4", new)]
        rows = [
            row("videos", video_id=v, source_uri=u, status="ok", processed_at=t)
            for v, u, t in videos
        ]
        batch.add("videos", ["vold", "vnew"], pd.DataFrame(rows))
        failures = [
            row("failures", source_uri=u, stage="probe", error_type="X", message="m", failed_at=t)
            for u, t in [("/in/bad-old.mp4", old), ("/in/bad-new.mp4", new)]
        ]
        batch.add("failures", ["/in/bad-old.mp4", "/in/bad-new.mp4"], pd.DataFrame(failures))
        lake.commit(batch)
    assert expired(lake, 30, now) == Targets(("vold",), ("/in/bad-old.mp4", "/in/old.mp4"))
    assert expired(lake, 1, now).video_ids == ("vnew", "vold")
    assert not expired(lake, 60, now)
