"""Writing to the lake: a batch of videos' rows in one commit per table, then their pages."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from emotrack.html_report import REPORT_DIR
from emotrack.lake import Batch, Lake
from emotrack.report import artifact_row, outcome_of
from emotrack.units import VideoResult


@task(name="commit-batch", task_run_name="commit {label}", cache_policy=NO_CACHE)
def commit_batch(
    lake: Lake, results: list[VideoResult], label: str, keep_version: str | None = None
) -> dict[str, int]:
    """Replace the batch's videos' rows in every table (one Delta commit each, `videos`
    last), then write their HTML pages; one WARNING per unreadable file, and a table of the
    batch's videos as an artifact of the run. Storage clients retry transient faults; a
    commit that still fails raises, and none of the batch's videos is complete."""
    batch = Batch()
    for result in results:
        result.add_to(batch)
    rows = lake.commit(batch, keep_version)
    pages = {f"{REPORT_DIR}/{n}": data for r in results for n, data in r.pages.items()}
    lake.store.write_many(pages)
    logger = get_run_logger()
    for result in results:
        if result.status == "failed":
            logger.warning("%s: not processed (%s)", result.name, result.detail)
    logger.info("%s: %d video(s) committed: %s rows", label, len(results), rows)
    create_table_artifact(
        [artifact_row(outcome_of(r)) for r in results],
        key="emotrack-run-videos",
        description=f"{label}: status, frames, faces, dominant emotion or reason",
    )
    return rows
