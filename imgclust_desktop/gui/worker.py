"""Run Qt-free core work off the GUI thread and report back through signals.

A task is any callable `task(*, on_progress, cancelled, on_event) -> result` following the core's
progress/cancel protocol. `PipelineWorker` runs it in a background thread; its signals are delivered to
the GUI thread through queued connections, so slots never run concurrently with the widgets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

from imgclust_desktop.core.progress import Cancelled, Progress

Task = Callable[..., Any]
EventCallback = Callable[[str, object], None]


class PipelineWorker(QObject):
    """Runs one task in a background thread; progress, events and the outcome arrive as signals."""

    progressed = Signal(object)  # core.progress.Progress
    event = Signal(str, object)  # pipeline events; thumbnails arrive batched as ("thumbnails", [(i, jpeg)])
    finished = Signal(object)  # the task's return value
    failed = Signal(str, str)  # person-readable message, details (traceback)
    cancelled = Signal()
    done = Signal()  # always last, after finished / failed / cancelled

    def __init__(self, task: Task, *, name: str = "task", batch_interval: float = 0.1) -> None:
        super().__init__()
        self.name = name
        self._task = task
        self._stop = threading.Event()
        self._batch_interval = batch_interval
        self._thumbs: list[tuple[int, bytes]] = []
        self._last_flush = 0.0
        # A daemon thread: a stage that ignores cancel (a native UMAP call) must not keep the app alive.
        self._thread = threading.Thread(target=self._run, name=f"imgclust-{name}", daemon=True)
        self.cancel_requested_at: float | None = None
        self.ended_at: float | None = None

    def start(self) -> PipelineWorker:
        """Start the task; returns self so callers can chain."""
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the task to stop; it raises Cancelled at its next check (within ~0.2 s)."""
        if not self._stop.is_set():
            self.cancel_requested_at = time.perf_counter()
            self._stop.set()

    def is_cancelled(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends (tests and shutdown only); True when it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _on_event(self, kind: str, payload: object) -> None:
        # Thumbnails come one per image: batching keeps 100k images from flooding the GUI event queue.
        if kind == "thumbnail":
            self._thumbs.append(payload)  # type: ignore[arg-type]
            if time.perf_counter() - self._last_flush >= self._batch_interval:
                self._flush()
            return
        self._flush()
        self.event.emit(kind, payload)

    def _flush(self) -> None:
        self._last_flush = time.perf_counter()
        if self._thumbs:
            batch, self._thumbs = self._thumbs, []
            self.event.emit("thumbnails", batch)

    def _run(self) -> None:
        try:
            result = self._task(
                on_progress=self.progressed.emit, cancelled=self._stop.is_set, on_event=self._on_event
            )
        except Cancelled:
            self._flush()
            self.cancelled.emit()
        except (
            Exception
        ) as exc:  # any failure must reach the person as a dialog, not kill the thread silently
            message = str(exc) or type(exc).__name__
            self.failed.emit(message, traceback.format_exc())
        else:
            self._flush()
            # The person asked to stop: a result that arrives afterwards is not what they want on screen.
            if self._stop.is_set():
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            self.ended_at = time.perf_counter()
            self.done.emit()


def pipeline_task(request_fields: dict, cluster_fields: dict) -> Task:
    """A task running core.pipeline.run; adds thumbnail_keys, row_keys and ("preview", Session) events."""

    def task(*, on_progress, cancelled, on_event: EventCallback):
        from imgclust_desktop.core import pipeline
        from imgclust_desktop.core.cluster import ClusterParams

        request = pipeline.PipelineRequest(cluster=ClusterParams(**cluster_fields), **request_fields)
        on_progress(Progress("starting", 0, 0, message="loading libraries"))
        state: dict[str, Any] = {}

        def relay(kind: str, payload: object) -> None:
            if kind == "scanned":
                on_event("thumbnail_keys", [f.key() for f in payload.files])  # type: ignore[attr-defined]
            on_event(kind, payload)
            # Previews are built here, off the GUI thread, so the map and colours appear before the end.
            if kind == "features":
                state["features"] = payload
                on_event("row_keys", [f.key() for f in payload.files])  # type: ignore[attr-defined]
            elif kind == "embedded" and "features" in state:
                state["preview"] = preview_session(state["features"], payload, request)
                on_event("preview", state["preview"])
            elif kind == "clustered" and "preview" in state:
                labels = payload.labels.astype("int64")  # type: ignore[attr-defined]
                on_event("preview", dataclasses.replace(state["preview"], labels=labels))

        session = pipeline.run(request, on_progress=on_progress, cancelled=cancelled, on_event=relay)
        return session, file_keys(session.paths)

    return task


def embeddings_task(
    features: str, paths: str | None, cluster_fields: dict, extraction_fields: dict | None = None
) -> Task:
    """A task clustering a person's own embeddings (core.embeddings.run); result as pipeline_task's."""

    def task(*, on_progress, cancelled, on_event: EventCallback):
        from imgclust_desktop.core import embeddings
        from imgclust_desktop.core.cluster import ClusterParams

        params = ClusterParams(**cluster_fields)
        extraction = extraction_fields or {}
        request = embeddings.FeaturesRequest(
            features,
            paths,
            embedding=extraction.get("embedding", "umap"),
            cluster=params,
            pca_components=extraction.get("pca_components", 50),
            seed=params.seed,
        )
        session = embeddings.run(request, on_progress=on_progress, cancelled=cancelled, on_event=on_event)
        return session, file_keys(session.paths)

    return task


def recluster_task(session: Any, cluster_fields: dict) -> Task:
    """A task re-clustering an existing session from its stored features (never re-extracts)."""

    def task(*, on_progress, cancelled, on_event: EventCallback):
        from imgclust_desktop.core import pipeline
        from imgclust_desktop.core.cluster import ClusterParams

        return pipeline.recluster(
            session, ClusterParams(**cluster_fields), on_progress=on_progress, cancelled=cancelled
        )

    return task


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a burst of new objects is made (a session loaded, a re-cut into
    25,000 groups: 40-60 ms of young and full collections in the middle of it), then one young collection
    that moves them to the old generation, where full passes are rare. Inside another pause: nothing more
    (the outer one collects once)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect(1)


def load_session_task(folder: str) -> Task:
    """A task loading a session folder and the thumbnail-cache keys of its images."""

    def task(*, on_progress, cancelled, on_event: EventCallback):
        from pathlib import Path

        from imgclust_desktop.core import session as session_io

        on_progress(Progress("loading session", 0, 1))
        # The paths are one list of up to a million strings, new to the garbage collector: every young
        # collection walks all of it (50 ms at 1M), and two ran between the load and the painted map. So
        # none runs during the load, and one at its end moves the list to the old generation, collected
        # rarely. (The GUI thread only waits meanwhile.)
        with collector_paused():
            session = session_io.load(Path(folder))
        return session, file_keys(session.paths)

    return task


def save_session_task(session: Any, folder: str) -> Task:
    """A task writing a session folder (montages and the report take a while for big sessions)."""

    def task(*, on_progress, cancelled, on_event: EventCallback):
        from pathlib import Path

        from imgclust_desktop.core import session as session_io

        session_io.save(session, Path(folder))
        return folder

    return task


def preview_session(features_result: Any, coords: Any, request: Any) -> Any:
    """A provisional Session (all rows unclustered) so the map can be drawn before clustering ends."""
    import numpy as np

    from imgclust_desktop.core.session import Session

    n = len(features_result.files)
    return Session(
        paths=[f.path for f in features_result.files],
        features=features_result.features,
        coords=np.asarray(coords, dtype=np.float32),
        labels=np.full(n, -1, dtype=np.int64),
        outlier_score=np.zeros(n, dtype=np.float32),
        duplicate_group=np.full(n, -1, dtype=np.int64),
        excluded=np.zeros(n, dtype=bool),
        clusters={},
        model_id=request.model_id,
        inputs=list(request.inputs),
        params={},
        timings={},
        scores={},
        k_curve=None,
        linkage=None,
        linkage_cluster_ids=[],
        skipped=list(features_result.skipped),
        edits=[],
        path=None,
    )


class FileKeys(Sequence):
    """Thumbnail-cache keys for paths as they are on disk now ("" where a file is gone), each found (one
    stat) when first asked for: opening a 1M-image session stat-ed every file first (about 5 s), though a
    view only ever asks for the thumbnails it shows."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = paths
        self._keys: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        key = self._keys.get(index)
        if key is None:
            key = self._keys[index] = _file_key(self._paths[index])
        return key


def _file_key(path: str) -> str:
    from imgclust_desktop.core.sources import FileIdentity

    try:
        st = os.stat(path)
    except OSError:
        return ""
    return FileIdentity(path, st.st_size, st.st_mtime_ns).key()


def file_keys(paths: Sequence[str]) -> FileKeys:
    """Thumbnail-cache keys for paths, found on first use (FileKeys)."""
    return FileKeys(paths)
