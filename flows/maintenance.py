"""The lake's upkeep as its own deployment (`emotrack serve --maintenance-cron`): retention,
then compaction, checkpoint and vacuum. Deployed, it takes these steps off the nightly."""

from __future__ import annotations

from emotrack.tasks.forget import forget_expired
from emotrack.tasks.report import compact_tables
from prefect import flow

from emotrack.lake import Lake
from emotrack.settings import Settings


@flow(name="emotrack-maintenance", flow_run_name="maintenance {lake}")
def maintenance(
    lake: str, retain_days: float | None = None, settings: Settings | None = None
) -> dict[str, int]:
    """With the lake's lock held (a nightly run and this one wait for each other): a forget
    that was killed finished, the videos processed more than `retain_days` ago forgotten
    (None: kept), then each table's small files packed together once they pile up, a
    checkpoint, and a vacuum of the files older than the retention window
    (Settings.vacuum_retention_hours). Returns how many videos were forgotten and how many
    files compaction removed and vacuumed."""
    settings = settings or Settings()
    target = Lake(lake)
    with target.writing(ttl_s=settings.lock_ttl_s):
        forgotten = forget_expired(target, retain_days)
        done = compact_tables(target, settings)
    return {
        "forgotten": forgotten,
        "files_removed": sum(figures["files_removed"] for figures in done.values()),
        "vacuumed": sum(figures["vacuumed"] for figures in done.values()),
    }
