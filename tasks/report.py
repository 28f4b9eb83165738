"""The last steps: compaction when small files pile up, then what an operator looks at (the
HTML pages of the lake, the run's artifacts in the Prefect UI)."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from emotrack.html_report import ReportFolder, write_indexes, write_run_page
from emotrack.lake import Lake
from emotrack.notify import failed_videos_event
from emotrack.report import OutcomeLog, run_markdown
from emotrack.settings import Settings


def compact(
    lake: Lake, settings: Settings, sort: bool = False, retention_hours: float | None = None
) -> dict[str, dict[str, int]]:
    """Compact the lake's tables as settings say: a run's cheap packing of small files, or,
    with sort (`emotrack compact`), every table rewritten with each video's rows together;
    then checkpoint and vacuum (retention_hours: settings.vacuum_retention_hours)."""
    return lake.compact(
        sort=sort,
        retention_hours=settings.vacuum_retention_hours
        if retention_hours is None
        else retention_hours,
        min_small_files=None if sort else settings.compact_small_files,
        target_mb=settings.target_file_mb,
    )


@task(name="compact-tables", cache_policy=NO_CACHE)
def compact_tables(lake: Lake, settings: Settings) -> dict[str, dict[str, int]]:
    """Pack each table's small files together once it has settings.compact_small_files of
    them (no sorting: only the new files are rewritten), checkpoint, vacuum."""
    done = compact(lake, settings)
    if done:
        get_run_logger().info("compacted %s", done)
    return done


def alert_failed_videos(counts: dict[str, int], threshold: int | None) -> bool:
    """Emit the event for a run with more failed videos than `threshold`, to which the
    automation of `emotrack serve --notify` reacts (emotrack.notify); returns whether."""
    from prefect.events import emit_event
    from prefect.runtime import flow_run

    event = failed_videos_event(counts, threshold, flow_run.get_id(), flow_run.get_name())
    if event is None:
        return False
    get_run_logger().warning(
        "%d video(s) failed, more than the threshold of %d: notifying",
        event["payload"]["failed"],
        threshold,
    )
    emit_event(**event)
    return True


@task(name="write-html-report", cache_policy=NO_CACHE)
def write_html_report(lake: Lake, run: str, outcomes: OutcomeLog) -> tuple[str, str]:
    """This run's page, and the index pages whose videos changed (from `videos` and
    `summaries`; each video's own page was written with its commit). Returns where the
    index and the run's page are."""
    out = ReportFolder(lake=lake)
    run_page = write_run_page(out, run, outcomes.page_rows())
    index = write_indexes(lake, out, run)
    get_run_logger().info("HTML report: %s (this run: %s)", index, run_page)
    return index, run_page


@task(name="publish-run-report", cache_policy=NO_CACHE)
def publish_run_report(
    lake: Lake, outcomes: OutcomeLog, index: str | None = None, run_page: str | None = None
) -> None:
    """A markdown summary of the run (counts, the files not processed and why, where the
    outputs are) as an artifact of the flow run; each commit added its table of videos."""
    create_markdown_artifact(
        run_markdown(outcomes, lake, index, run_page),
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
