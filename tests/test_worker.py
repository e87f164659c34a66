"""The background worker: progress, results, failures and cancel arrive on the GUI thread as signals."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
from PySide6.QtCore import QThread, QTimer

from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.progress import RateMeter, check_cancel
from imgclust_desktop.core.session import Session
from imgclust_desktop.gui.worker import PipelineWorker, file_keys, load_session_task, pipeline_task


def collect(worker: PipelineWorker) -> dict[str, list]:
    """Record every signal with the thread it was delivered on."""
    seen: dict[str, list] = {
        name: [] for name in ("progressed", "event", "finished", "failed", "cancelled", "done")
    }
    for name in seen:
        getattr(worker, name).connect(
            lambda *args, name=name: seen[name].append((args, QThread.currentThread()))
        )
    return seen


def counting_task(n: int, step_s: float = 0.0):
    def task(*, on_progress, cancelled, on_event):
        meter = RateMeter("count", n, on_progress, min_interval=0)
        for i in range(n):
            check_cancel(cancelled)
            time.sleep(step_s)
            meter.update(i + 1)
        return {"counted": n, "thread": threading.current_thread().name}

    return task


def test_progress_and_result_arrive_on_the_gui_thread(qtbot):
    worker = PipelineWorker(counting_task(5), name="count")
    seen = collect(worker)
    with qtbot.waitSignal(worker.done, timeout=5000):
        worker.start()
    gui_thread = QThread.currentThread()
    assert [args[0].done for args, _ in seen["progressed"]] == [1, 2, 3, 4, 5]
    assert all(thread == gui_thread for name in seen for _, thread in seen[name])
    (result,), _ = seen["finished"][0]
    assert result["counted"] == 5 and result["thread"] == "imgclust-count"  # the work ran off the GUI thread
    assert not seen["failed"] and not seen["cancelled"] and len(seen["done"]) == 1


def test_failure_reaches_the_gui_with_a_traceback(qtbot):
    def task(*, on_progress, cancelled, on_event):
        raise ValueError("no images found in /nowhere")

    worker = PipelineWorker(task)
    seen = collect(worker)
    with qtbot.waitSignal(worker.done, timeout=5000):
        worker.start()
    (message, details), _ = seen["failed"][0]
    assert message == "no images found in /nowhere"
    assert "Traceback" in details and "ValueError" in details
    assert not seen["finished"]


def test_cancel_stops_within_a_second_while_the_gui_keeps_ticking(qtbot):
    worker = PipelineWorker(counting_task(10_000, step_s=0.01))
    seen = collect(worker)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    worker.start()
    qtbot.waitUntil(lambda: len(seen["progressed"]) >= 20, timeout=5000)
    qtbot.wait(300)
    ticks_before_cancel = len(ticks)
    with qtbot.waitSignal(worker.cancelled, timeout=1000):
        worker.cancel()
    timer.stop()
    assert worker.ended_at - worker.cancel_requested_at < 1.0
    assert ticks_before_cancel >= 10  # ~0.5 s of work at 20 ms per tick: the event loop was never blocked
    assert not seen["finished"] and not worker.is_running()


def test_a_result_that_arrives_after_cancel_is_not_delivered(qtbot):
    release = threading.Event()

    def stubborn(*, on_progress, cancelled, on_event):  # a stage that cannot be interrupted (a native call)
        release.wait(5)
        return "late result"

    worker = PipelineWorker(stubborn)
    seen = collect(worker)
    # Listen before releasing: a signal emitted before anyone listens is queued to no one.
    with qtbot.waitSignal(worker.done, timeout=5000):
        worker.start()
        worker.cancel()
        release.set()
    assert len(seen["cancelled"]) == 1 and not seen["finished"]


def test_thumbnail_events_are_batched_in_order(qtbot):
    def task(*, on_progress, cancelled, on_event):
        on_event("scanned", "scan result")
        for i in range(500):
            on_event("thumbnail", (i, b"jpeg%d" % i))
        on_event("embedded", "coords")
        return None

    worker = PipelineWorker(task, batch_interval=10.0)
    seen = collect(worker)
    with qtbot.waitSignal(worker.done, timeout=5000):
        worker.start()
    events = [args for args, _ in seen["event"]]
    kinds = [kind for kind, _ in events]
    assert kinds == ["scanned", "thumbnails", "embedded"]  # one batch, flushed before the next event
    assert [i for i, _ in events[1][1]] == list(range(500))
    assert events[1][1][7] == (7, b"jpeg7")


def test_file_keys_match_the_scanner_and_mark_missing_files(image_folder):
    from imgclust_desktop.core.sources import scan

    found = scan([image_folder])
    paths = [f.path for f in found.files]
    keys = file_keys(paths + [str(image_folder / "gone.png")])
    assert not keys._keys  # nothing is stat-ed before a view asks (a 1M-image session opens at once)
    assert keys[len(paths)] == "" and len(keys._keys) == 1
    assert list(keys) == [f.key() for f in found.files] + [""]


def test_real_pipeline_streams_events_then_the_session(qtbot, image_folder):
    fields = {"inputs": [str(image_folder)], "embedding": "pca", "seed": 0}
    cluster = {"method": "kmeans", "k": 3, "space": "reduced", "seed": 0}
    worker = PipelineWorker(pipeline_task(fields, cluster), name="pipeline")
    seen = collect(worker)
    with qtbot.waitSignal(worker.done, timeout=120_000):
        worker.start()
    assert not seen["failed"], seen["failed"]
    kinds = [args[0] for args, _ in seen["event"]]
    order = [
        "thumbnail_keys",
        "scanned",
        "thumbnails",
        "features",
        "row_keys",
        "embedded",
        "preview",
        "clustered",
    ]
    assert set(order) <= set(kinds)
    assert sorted(order, key=kinds.index) == order  # first occurrences follow the pipeline's stage order
    previews = [args[1] for args, _ in seen["event"] if args[0] == "preview"]
    assert (previews[0].labels == -1).all() and len(set(previews[-1].labels.tolist())) == 3
    thumbs = [item for args, _ in seen["event"] if args[0] == "thumbnails" for item in args[1]]
    assert sorted(i for i, _ in thumbs) == list(range(24)) and all(j[:2] == b"\xff\xd8" for _, j in thumbs)
    (result,), _ = seen["finished"][0]
    session, keys = result
    assert len(session.paths) == 24 and len(set(session.labels.tolist())) == 3
    assert list(keys) == list(file_keys(session.paths)) and all(keys)
    stages = {args[0].stage for args, _ in seen["progressed"]}
    assert {"scan", "features"} <= stages


def test_a_loaded_sessions_paths_are_old_to_the_collector_which_stays_on(qtbot, tmp_path):
    # the paths list is walked by every young collection (50 ms at 1M paths): the load leaves it old
    n = 500
    paths = [f"/photos/img{i:04d}.jpg" for i in range(n)]
    made = Session(paths, np.eye(n, 8, dtype=np.float32), np.zeros((n, 2)), np.arange(n) % 4)
    session_io.save(made, tmp_path / "session", report=False)
    outcomes = {}
    for folder in (tmp_path / "session", tmp_path / "nowhere"):
        worker = PipelineWorker(load_session_task(str(folder)), name="open")
        outcomes[folder.name] = collect(worker)
        with qtbot.waitSignal(worker.done, timeout=10_000):
            worker.start()
        assert gc.isenabled()
    assert outcomes["nowhere"]["failed"] and not outcomes["nowhere"]["finished"]
    ((loaded, keys),), _ = outcomes["session"]["finished"][0]
    assert loaded.paths == paths and len(keys) == n
    young = {id(obj) for generation in (0, 1) for obj in gc.get_objects(generation=generation)}
    assert id(loaded.paths) not in young
