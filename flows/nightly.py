"""The nightly flow: every new or changed video under a folder -> rows in the lake's tables."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emotrack.tasks.commit import commit_batch
from emotrack.tasks.discover import plan_run
from emotrack.tasks.forget import forget_expired
from emotrack.tasks.people import group_people, people_at_rest
from emotrack.tasks.report import (
    alert_failed_videos,
    compact_tables,
    publish_run_report,
    report_progress,
    start_progress,
    write_html_report,
)
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from emotrack.cluster import (
    ALLOWED_FAILURES,
    dask_client,
    progress_events,
    quiet_restarts,
    run_bounded,
    trim_heap,
)
from emotrack.commits import Pending
from emotrack.errors import UnreadableVideo, classify
from emotrack.forgetting import forgotten_faces
from emotrack.incremental import CRASHED_RUNS, Plan, arrivals_first
from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.people_lake import has_people
from emotrack.person_baselines import people_jobs
from emotrack.progress import RunProgress
from emotrack.report import OutcomeLog, outcome, outcome_of
from emotrack.settings import Settings
from emotrack.sources import Found
from emotrack.storage import base_name
from emotrack.units import VideoJob, VideoResult, analyse_video, failed_result


@flow(name="emotrack-nightly", flow_run_name="nightly {source}")
def nightly(
    source: str,
    lake: str,
    fps: float | None = None,
    model: str = DEFAULT_MODEL,
    dask_address: str | None = None,
    workers: int = 2,
    reprocess: bool = False,
    detector: str | None = None,
    rehash: bool = False,
    geometry: bool | None = None,
    detect_every_s: float | None = None,
    retain_days: float | None = None,
    store: str | None = None,
    people: bool | None = None,
    max_videos: int | None = None,
    time_budget_s: float | None = None,
    maintenance: bool = True,
    failed_videos_alert: int | None = None,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Process the new or changed videos under `source` into `lake` (all with reprocess).

    `fps`, `detector`, `geometry` (the face landmarker on or off) and `detect_every_s` (0:
    the detector on every frame) are the run's options over `settings` (None: from
    EMOTRACK_* in the environment); None keeps the settings' own.
    `rehash` reads every local file again to find its content, instead of trusting an
    unchanged size, modification time and inode. `retain_days`: videos processed longer
    ago than that are forgotten first (emotrack.forgetting; None: kept). `store`: what the
    lake keeps of each face, `full`, `geometry` or `labels` (emotrack.schema.STORE_LEVELS).
    `people`: recognise people across videos (emotrack.people_lake; None: the settings').
    `max_videos`, `time_budget_s`: the run sends no more videos than that, or none once that
    many seconds have passed since it started; the videos in flight finish and are
    committed, and the run ends as usual. What is left is the lake's backlog: the next run
    does it after the files that arrived meanwhile (emotrack.incremental.arrivals_first).
    `maintenance`: the run applies the retention and packs small files itself; False where
    the maintenance deployment does (emotrack.flows.maintenance). `failed_videos_alert`:
    a run with more failed videos than that emits an event (emotrack.notify; None: never).

    Returns how many files ended ok, failed (unreadable), were skipped (already complete) or
    quarantined (recorded as unreadable earlier, unchanged since), and how many were left
    for the next run; raises, after the others are done, if any video hit an unexpected
    error.
    """
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
    settings = (settings or Settings()).with_run_options(
        analysis_fps=fps,
        detector=detector,
        geometry=geometry,
        detect_every_s=detect_every_s,
        store=store,
        people=people,
    )
    target = Lake(lake)
    with target.writing(ttl_s=settings.lock_ttl_s):  # a second run waits for this one
        # Step 0: what must go, before anything comes.
        forget_expired(target, retain_days if maintenance else None)
        if not settings.people and has_people(target):  # a lake with people keeps them current
            settings = settings.with_run_options(people=True)
        budget = Budget(max_videos, deadline)
        counts = _nightly(
            source,
            target,
            settings,
            model,
            dask_address,
            workers,
            reprocess,
            rehash,
            budget,
            maintenance,
        )
    alert_failed_videos(counts, failed_videos_alert)
    return counts


@dataclass(frozen=True)
class Budget:
    """How much one run may do: videos sent at most, and the time.monotonic() after which
    it sends none (None: no limit)."""

    max_videos: int | None = None
    deadline: float | None = None

    def allows(self, sent: int) -> bool:
        """Whether a run that has sent `sent` videos may send one more."""
        if self.max_videos is not None and sent >= self.max_videos:
            return False
        return self.deadline is None or time.monotonic() < self.deadline


def _nightly(
    source: str,
    lake: Lake,
    settings: Settings,
    model: str,
    dask_address: str | None,
    workers: int,
    reprocess: bool,
    rehash: bool,
    budget: Budget,
    maintenance: bool = True,
) -> dict[str, int]:
    """The steps of a nightly run, with the lake's lock held."""
    # Step 1: find the videos, and keep those that are new or changed; what arrived since
    # the last run goes before what a run stopped by its budget left.
    found, plan = plan_run(source, lake, model, reprocess, rehash)
    plan.todo[:] = arrivals_first(plan.todo, lake.backlog())
    outcomes = OutcomeLog()  # in a file as they come: a first run has millions
    outcomes.extend(outcome(u, "skipped", plan.video_ids[u]) for u in plan.done)
    outcomes.extend(outcome(u, "quarantined", plan.video_ids[u]) for u in plan.quarantined)
    # Step 2: files that runs died on are recorded, then quarantined like unreadable ones.
    if plan.crashed:
        crashed = [crashed_result(found[u], plan.video_ids[u]) for u in plan.crashed]
        commit_batch(lake, crashed, "quarantined after crashed runs")
        outcomes.extend(outcome_of(r) for r in crashed)
    # Step 3: each video through its unit of work on the cluster; rows committed in batches,
    # until the budget is spent.
    left = list(plan.todo)
    if plan.todo:
        with dask_client(dask_address, workers, settings.worker_memory_gb) as client:
            sent = analyse_and_commit(
                plan, found, lake, settings, model, client, outcomes, budget, bool(dask_address)
            )
        left = plan.todo[sent:]
    lake.set_backlog(left)
    if left:
        get_run_logger().warning(
            "the run's budget is spent: %d video(s) left for the next run", len(left)
        )
    # Step 3b: the new tracks joined to people (--people); 3c: the videos whose people
    # changed, scored again with their people's resting faces (settled, or made now).
    if settings.people:
        grouping = group_people(lake, settings)
        for job in people_jobs(lake, grouping.videos):
            commit_batch(lake, people_at_rest(job, model, lake), f"resting faces, {job.name}")
    # Step 4: pack small files together once they pile up (unless the maintenance
    # deployment does).
    if maintenance:
        compact_tables(lake, settings)
    # Step 5: what the operator sees: HTML pages of the lake, and the run in the Prefect UI.
    index, run_page = write_html_report(lake, run_name(), outcomes)
    publish_run_report(lake, outcomes, index, run_page)
    outcomes.close()
    return count_statuses(outcomes) | ({"left": len(left)} if left else {})


def analyse_and_commit(
    plan: Plan,
    found: dict[str, Found],
    lake: Lake,
    settings: Settings,
    model: str,
    client: Any,
    outcomes: OutcomeLog,
    budget: Budget = Budget(),
    remote: bool = False,
) -> int:
    """Send the videos of the plan to the cluster in its order, a bounded window at a time,
    while the budget allows, and commit the results in batches (Settings.commit_*). The
    console follows each video; the Prefect log has a line per video. A video whose content
    turns out to be forgotten (plan.unwanted: an object, read only by its unit) is dropped,
    its staged rows deleted, and has no outcome. Every Settings.worker_restart_videos
    videos, the local workers are replaced between two videos (not a `remote` cluster's).
    Each video's outcome goes to `outcomes`. Returns how many of plan.todo were sent (the
    first ones)."""
    logger = get_run_logger()
    console = RunProgress(len(plan.todo), mode=settings.progress)
    progress, total = start_progress(), len(plan.todo)
    pending = Pending(settings.commit_videos, settings.commit_seconds, settings.commit_rows)
    crashed_before = lake.crashed()
    finished = 0  # videos of this step with an outcome
    # A file whose content is not known yet (an object) learns it in its unit, and stops
    # there if that content was forgotten.
    hidden = forgotten_faces(lake)  # faces forgotten with their person stay out
    sent = 0

    def jobs() -> Iterator[VideoJob]:
        nonlocal sent
        for u in plan.todo:
            if not budget.allows(sent):
                return
            sent += 1
            yield VideoJob(
                found[u],
                plan.video_ids[u],
                plan.unwanted if plan.video_ids[u] is None else frozenset(),
                hidden if plan.video_ids[u] is None else _only(hidden, plan.video_ids[u]),
            )

    def commit() -> None:
        nonlocal finished
        results = pending.take()
        label = f"videos {finished + 1}-{finished + len(results)} of {total}"
        finished += len(results)
        try:
            commit_batch(lake, results, label)
            outcomes.extend(outcome_of(r) for r in results)
        except Exception as error:
            if classify(error) == "storage":
                raise
            logger.exception("%s: the commit failed; the next run redoes them", label)
            outcomes.extend(outcome(r.uri, "error", r.video_id) for r in results)
        del results
        trim_heap()  # what the commit took, back to the system before the next batch
        report_progress(progress, 100.0 * finished / total)

    window = settings.videos_in_flight * sum(client.nthreads().values())
    try:
        with progress_events(client, console_events(console)):
            for item in run_bounded(
                client,
                analyse_video,
                jobs(),
                settings,
                model,
                lake.url,
                window=window,
                name=lambda job: f"video-{job.video_id or job.name}",
                retries=settings.unit_retries,
                tick_s=min(settings.commit_seconds, 10.0),
                on_submit=lambda job: lake.start_attempt(
                    job.found.uri, crashed_before.get(job.found.uri, 0)
                ),
                on_retry=lambda job, error, delay: logger.warning(
                    "%s: %s; sent again in %.0f s", job.name, error, delay
                ),
                drain_every=0 if remote else settings.worker_restart_videos,
                on_drained=lambda: restart_workers(client, logger),
            ):
                if item is not None:
                    job, result = item
                    lake.end_attempt(job.found.uri)
                    result = as_result(job, result, settings, logger.error)
                    if result is not None and result.video_id in plan.unwanted:
                        drop_result(lake, result)
                        console.finished_video(job.found.uri, job.name, "skipped", "forgotten")
                        continue
                    done = finished + len(pending.results) + 1
                    if result is None:
                        finished += 1
                        outcomes.add(outcome(job.found.uri, "error", job.video_id))
                        console.finished_video(
                            job.found.uri, job.name, "error", "unexpected error, see the log"
                        )
                    else:
                        pending.add(result)
                        console.finished_video(
                            job.found.uri, job.name, result.status, result.detail
                        )
                    logger.info(
                        "video %d of %d: %s %s",
                        done,
                        total,
                        job.name,
                        result.status if result else "error",
                    )
                if pending.due():
                    commit()
        if pending.results:
            commit()
    finally:
        console.close()
    return sent


def restart_workers(client: Any, logger: Any) -> None:
    """Fresh worker processes, between two videos: what a worker kept is given back."""
    started = time.monotonic()
    with quiet_restarts():  # asked for: not the nanny's warning of a worker restarting
        client.restart()
    logger.info("workers replaced by fresh processes in %.1f s", time.monotonic() - started)


def _only(hidden: dict[str, Any], video_id: str | None) -> dict[str, Any]:
    return {video_id: hidden[video_id]} if video_id in hidden else {}


def drop_result(lake: Lake, result: VideoResult) -> None:
    """Nothing of this unit's result reaches the lake: its staged rows are deleted."""
    for files in result.staged.values():
        for file in files:
            lake.store.delete(file.file)


def as_result(
    job: VideoJob, result: Any, settings: Settings, log_error: Callable[..., None]
) -> VideoResult | None:
    """A unit's result, or what its exception means: a worker that died on the video is an
    unreadable video (recorded); anything else is logged with its traceback and the video is
    left for the next run (None). (A storage error never gets here: run_bounded raises it.)"""
    if not isinstance(result, BaseException):
        return result
    if classify(result) == "worker-died":
        died = UnreadableVideo(
            "analyse",
            f"stopped: the Dask worker analysing it died {ALLOWED_FAILURES} times (memory "
            f"limit of {settings.worker_memory_gb:g} GB per worker exceeded, or a crash): "
            f"{result}",
        )
        return failed_result(job.found.uri, died, job.video_id, job.found.size)
    log_error("%s: unexpected error; the other videos go on", job.name, exc_info=result)
    return None


def crashed_result(found: Found, video_id: str | None) -> VideoResult:
    """The failure recorded for a file that was being analysed when CRASHED_RUNS runs died."""
    error = UnreadableVideo(
        "analyse",
        f"quarantined: {CRASHED_RUNS} runs died (killed, out of memory or a crash) while "
        "analysing it; it is skipped until its content changes (or run with --reprocess)",
    )
    return failed_result(found.uri, error, video_id, found.size)


def console_events(console: RunProgress) -> Callable[[dict[str, Any]], None]:
    """What the workers report (emotrack.cluster.report), shown on the console."""

    def show(message: dict[str, Any]) -> None:
        if message.get("kind") == "start":
            console.started_video(
                message["uri"], base_name(message["uri"]), message["duration_s"], message["rate"]
            )
        elif message.get("kind") == "frames":
            console.analysed(message["uri"], int(message["frames"]))

    return show


def run_name() -> str:
    """This run's name in the report: when it started (UTC) and its flow run's id."""
    started = flow_run.get_scheduled_start_time() or datetime.now(UTC)
    return f"{started:%Y-%m-%dT%H%M%SZ}-{str(flow_run.get_id() or 'local')[:8]}"


def count_statuses(outcomes: OutcomeLog) -> dict[str, int]:
    """Counts per status; raises (the run ends Failed) if any video hit an unexpected error."""
    if outcomes.counts["error"]:  # the others are done; the run still ends Failed so that
        named = sorted(o.video for o in outcomes.problems if o.status == "error")  # someone looks
        more = outcomes.counts["error"] - len(named)
        raise RuntimeError(
            f"unexpected errors in {outcomes.counts['error']} video(s): {', '.join(named)}"
            + (f" and {more} more" if more else "")
        )
    return dict(outcomes.counts)
