"""Which videos a nightly run must process: new or changed content, not quarantined, not
forgotten."""

from __future__ import annotations

from dataclasses import dataclass, field

# A video that was being analysed when this many runs died is quarantined.
CRASHED_RUNS = 2


@dataclass(frozen=True)
class Plan:
    """What to do with each discovered file, by URI (in the discovery order)."""

    video_ids: dict[str, str | None] = field(default_factory=dict)  # content ids, if known
    todo: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # same content complete, or twice here
    quarantined: list[str] = field(default_factory=list)  # same content already failed
    crashed: list[str] = field(default_factory=list)  # runs died on it: to quarantine now
    forgotten: list[str] = field(default_factory=list)  # content forgotten: never again
    # Content ids a unit drops once it has read them (its file's id was not known before):
    # the forgotten ones, none with reprocess.
    unwanted: frozenset[str] = frozenset()


def plan_videos(
    video_ids: dict[str, str | None],
    completed: set[str],
    failed: dict[str, str | None],
    reprocess: bool = False,
    crashed: dict[str, int] | None = None,
    forgotten: set[str] | frozenset[str] = frozenset(),
) -> Plan:
    """Split files into todo / done / quarantined / crashed / forgotten.

    video_ids: each file's content id (None if not read yet: an object, or unreadable);
    completed: ids that are complete in the lake for the model in use; failed: source_uri ->
    content id of the recorded failures; crashed: source_uri -> runs that died while
    analysing it; forgotten: ids of forgotten content (emotrack.forgetting), which is never
    analysed again (nor recorded) but with reprocess. A failure stays quarantined while
    its file's content is unchanged; a file on which CRASHED_RUNS runs died is to be
    recorded as failed (then quarantined). A second file with the content of one already
    to do is done with it. With reprocess, every file is to do.
    """
    crashed = crashed or {}
    plan = Plan(
        video_ids=dict(video_ids), unwanted=frozenset() if reprocess else frozenset(forgotten)
    )
    todo_ids: set[str] = set()
    for uri, video_id in video_ids.items():
        if video_id is not None and video_id in todo_ids:
            plan.done.append(uri)
        elif reprocess or video_id is None:
            plan.todo.append(uri)
        elif video_id in forgotten:
            plan.forgotten.append(uri)
        elif video_id in completed:
            plan.done.append(uri)
        elif uri in failed and failed[uri] == video_id:
            plan.quarantined.append(uri)
        elif crashed.get(uri, 0) >= CRASHED_RUNS:
            plan.crashed.append(uri)
        else:
            plan.todo.append(uri)
        if video_id is not None and plan.todo and plan.todo[-1] == uri:
            todo_ids.add(video_id)
    return plan


def arrivals_first(todo: list[str], backlog: set[str]) -> list[str]:
    """The files to do, those that arrived since the last run first, then the backlog that
    a run stopped by its budget left (Lake.backlog); each part in its discovery order."""
    return [u for u in todo if u not in backlog] + [u for u in todo if u in backlog]
