"""The maintenance flow (`emotrack serve --maintenance-cron`): retention and compaction with
the lake's lock held, so that it and a nightly run wait for each other."""

import shutil
import threading
import time

from emotrack.flows.maintenance import maintenance

from emotrack.lake import Lake
from emotrack.notify import FAILED_VIDEOS_EVENT, failed_videos_event
from emotrack.settings import Settings


def test_maintenance_waits_for_the_lock_then_applies_the_retention(nightly_run, tmp_path):
    lake = Lake(shutil.copytree(nightly_run.lake.root, tmp_path / "lake"))
    videos = len(lake.read("videos"))  # the failed files' rows too
    files = set(lake.root.glob("tracks/*.parquet"))
    assert videos >= 3 and files
    held = threading.Event()

    def hold() -> None:
        with lake.writing():
            held.set()
            time.sleep(4)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    started = time.monotonic()
    settings = Settings(compact_small_files=2, vacuum_retention_hours=0)
    done = maintenance(str(lake.root), retain_days=1e-9, settings=settings)
    assert time.monotonic() - started >= 3.5  # it waited for the lock's holder
    holder.join()
    assert done["forgotten"] == videos  # processed more than a nanoday ago: all of them
    assert lake.read("tracks").empty and lake.read("videos").empty
    assert not files & set(lake.root.glob("tracks/*.parquet"))


def test_the_failed_videos_event_is_for_more_than_the_threshold_only():
    assert failed_videos_event({"failed": 2}, None, "id", "run") is None  # no threshold
    assert failed_videos_event({"failed": 2}, 2, "id", "run") is None
    event = failed_videos_event({"failed": 3, "ok": 9}, 2, "id", "run")
    assert event is not None and event["event"] == FAILED_VIDEOS_EVENT
    assert event["payload"] == {"failed": 3, "threshold": 2}
    assert event["resource"]["prefect.resource.id"] == "emotrack.nightly-run.id"
