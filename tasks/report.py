"""Step 6: Prefect artifacts that tell an operator what a run did."""

from __future__ import annotations

from pathlib import Path
from typing import cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from emotrack.html_report import report_folder, upload_report, write_report
from emotrack.lake import Lake
from emotrack.report import run_markdown, run_rows


@task(name="write-html-report", cache_policy=NO_CACHE)
def write_html_report(lake: Lake, published: list[str]) -> Path:
    """Refresh the report's index of every video, and write the pages that are missing
    (publish_scores writes the page of each video it publishes, the ids in `published`).
    On object storage the pages are written locally, then copied into LAKE/_report."""
    folder = report_folder(lake)
    index = write_report(lake, folder, [])
    if not lake.local:
        upload_report(lake, folder, published)
    get_run_logger().info("HTML report: %s", index)
    return index


@task(name="publish-run-report", cache_policy=NO_CACHE)
def publish_run_report(lake: Lake, statuses: dict[str, str], html: Path | None = None) -> None:
    """A table of the run's videos and a markdown summary (with a link to the HTML report),
    as artifacts of the flow run."""
    rows = run_rows(statuses, lake)
    create_table_artifact(
        rows,
        key="emotrack-run-videos",
        description="Videos of this run: status, frames, faces, dominant emotion or reason",
    )
    create_markdown_artifact(
        run_markdown(rows, lake, html),
        key="emotrack-run-summary",
        description="Counts, unreadable files and where the outputs are",
    )


def start_progress() -> UUID:
    """A progress artifact (0 %) for the share of videos analysed so far in this run."""
    return cast(
        UUID,
        create_progress_artifact(
            0.0, key="emotrack-run-progress", description="Videos decoded and analysed, in percent"
        ),
    )


def report_progress(progress: UUID, percent: float) -> None:
    update_progress_artifact(progress, percent)
