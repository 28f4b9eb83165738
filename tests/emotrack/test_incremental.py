from emotrack.incremental import CRASHED_RUNS, plan_videos

A, B, C, D = (f"/archive/{n}.mp4" for n in "abcd")


def test_complete_videos_are_skipped_and_new_ones_processed() -> None:
    plan = plan_videos({A: "va", B: "vb"}, completed={"va"}, failed={})
    assert (plan.todo, plan.done, plan.quarantined) == ([B], [A], [])


def test_a_failure_is_quarantined_until_its_content_changes() -> None:
    failed = {A: "vold", B: "vb"}
    plan = plan_videos({A: "vnew", B: "vb"}, completed=set(), failed=failed)
    assert plan.todo == [A] and plan.quarantined == [B]


def test_reprocess_takes_everything_and_unread_files_are_tried() -> None:
    ids = {A: "va", B: "vb", C: None, D: "vd"}
    plan = plan_videos(ids, completed={"va"}, failed={B: "vb"}, reprocess=True)
    assert plan.todo == [A, B, C, D]
    assert plan_videos(ids, completed=set(), failed={}).todo == [A, B, C, D]


def test_the_same_content_at_a_new_path_is_already_complete() -> None:
    assert plan_videos({C: "va"}, completed={"va"}, failed={}).done == [C]


def test_the_same_content_twice_in_one_run_is_analysed_once() -> None:
    plan = plan_videos({A: "va", B: "va", C: "vc"}, completed=set(), failed={})
    assert plan.todo == [A, C] and plan.done == [B]


def test_the_plan_keeps_the_content_ids_it_read() -> None:
    plan = plan_videos({A: "va", C: None}, completed=set(), failed={})
    assert plan.video_ids == {A: "va", C: None}


def test_a_file_that_runs_died_on_twice_is_to_be_quarantined() -> None:
    crashed = {A: CRASHED_RUNS, B: CRASHED_RUNS - 1, C: CRASHED_RUNS}
    plan = plan_videos({A: "va", B: "vb", C: "vc"}, set(), {}, crashed=crashed)
    assert (plan.todo, plan.crashed) == ([B], [A, C])
    plan = plan_videos({A: "va", C: "vc"}, {"vc"}, {}, crashed=crashed)
    assert (plan.crashed, plan.done) == ([A], [C])  # complete since: nothing to do
    assert plan_videos({A: "va"}, set(), {}, reprocess=True, crashed=crashed).todo == [A]


def test_forgotten_content_is_left_alone_wherever_it_is_found_but_with_reprocess() -> None:
    ids = {A: "va", B: "vb", C: "va", D: None}
    plan = plan_videos(ids, completed={"vb"}, failed={A: "va"}, forgotten={"va"})
    assert (plan.todo, plan.done, plan.forgotten) == ([D], [B], [A, C])
    assert plan.quarantined == []
    assert plan_videos(ids, set(), {}, reprocess=True, forgotten={"va"}).todo == [A, B, D]


def test_arrivals_go_before_the_backlog_each_in_discovery_order() -> None:
    from emotrack.incremental import arrivals_first

    assert arrivals_first([A, B, C, D], backlog={A, C}) == [B, D, A, C]
    assert arrivals_first([A, B], backlog=set()) == [A, B]
