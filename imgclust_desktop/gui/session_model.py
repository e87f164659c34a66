"""The Qt skin over core.Session: the one place views read state and hear about changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from imgclust_desktop.core.labels import label_counts

SELECT_MODES = ("replace", "add", "subtract")


class SessionModel(QObject):
    """Holds the current Session, its thumbnails, the selection and the undo history."""

    changed = Signal()  # any edit or new session; views re-read labels/names
    selectionChanged = Signal(object)  # np.ndarray of row indices
    splitFailed = Signal(str)  # a split in the worker could not be done, in words
    highlightChanged = Signal(object)  # np.ndarray of rows to ring on the map (search results)
    sessionReplaced = Signal(object)  # a new session with a fresh history (not an undoable swap)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None  # core.session.Session | None
        self.thumbnails: Any = None  # gui.thumbs.ThumbnailProvider | None
        self.undo_stack = QUndoStack(self)
        self.selection = np.empty(0, dtype=np.int64)
        self.highlight = np.empty(0, dtype=np.int64)
        self.split_worker: Any = None  # gui.worker.PipelineWorker while split_auto runs
        self.provisional = False  # True while the session is a preview of a run still in progress
        self._cut: tuple[Any, Any] | None = None  # (session made by cut_tree, the session it was cut from)

    def set_session(
        self, session: Any, thumbnails: Any = None, *, keep_history: bool = False, provisional: bool = False
    ) -> None:
        """Show a new session (or None); clears the selection and, unless kept, the undo history."""
        self.session = session
        if thumbnails is not None or session is None:
            self.thumbnails = thumbnails
        self.provisional = provisional
        if not keep_history:
            self.undo_stack.clear()
        n = self.row_count()
        self.selection = self.selection[self.selection < n] if keep_history else np.empty(0, dtype=np.int64)
        self.highlight = self.highlight[self.highlight < n] if keep_history else np.empty(0, dtype=np.int64)
        if not keep_history:
            self.sessionReplaced.emit(session)
        self.changed.emit()
        self.selectionChanged.emit(self.selection)
        self.highlightChanged.emit(self.highlight)

    def row_count(self) -> int:
        return 0 if self.session is None else len(self.session.paths)

    def select(self, indices: Any, mode: str = "replace") -> None:
        """Change the selection: replace it, add rows to it or subtract rows from it."""
        if mode not in SELECT_MODES:
            raise ValueError(f"mode must be one of {SELECT_MODES}, not {mode!r}")
        rows = np.asarray(indices, dtype=np.int64).ravel()
        if len(rows) > 1 and not np.all(rows[1:] > rows[:-1]):  # a lasso's rows come sorted: skip unique
            rows = np.unique(rows)
        rows = rows[(rows >= 0) & (rows < self.row_count())]
        if mode == "add":
            rows = np.union1d(self.selection, rows)
        elif mode == "subtract":
            rows = np.setdiff1d(self.selection, rows)
        if np.array_equal(rows, self.selection):
            return
        self.selection = rows
        self.selectionChanged.emit(rows)

    def set_highlight(self, indices: Any) -> None:
        """Ring these rows on the map (search results); an empty list clears it."""
        rows = np.asarray(indices, dtype=np.int64).ravel()
        self.highlight = rows[(rows >= 0) & (rows < self.row_count())]
        self.highlightChanged.emit(self.highlight)

    def notify(self) -> None:
        """Tell the views the session was edited in place."""
        self.changed.emit()

    def edited(self, _command: Any = None) -> None:
        """Called by every edit command after redo/undo: views re-read the session."""
        self.changed.emit()

    # ---- edits: each pushes one undoable command (see gui/commands.py)
    def can_edit(self) -> bool:
        return self.session is not None and not self.provisional

    def assign(self, rows: Any, cluster: int | None, name: str | None = None) -> Any:
        """Move rows to an existing cluster, or to a new one (cluster None)."""
        from imgclust_desktop.gui.commands import AssignToCluster

        rows = np.asarray(rows, dtype=np.int64).ravel()
        if not self.can_edit() or len(rows) == 0:
            return None
        return self._push(AssignToCluster(self, rows, cluster, name))

    def merge(self, clusters: Any, into: int | None = None) -> Any:
        from imgclust_desktop.gui.commands import MergeClusters

        ids = sorted({int(c) for c in clusters if int(c) >= 0})
        if not self.can_edit() or len(ids) < 2:
            return None
        return self._push(MergeClusters(self, ids, into))

    def split(self, cluster: int, sub_labels: Any, how: str = "") -> Any:
        from imgclust_desktop.gui.commands import SplitCluster

        if not self.can_edit():
            return None
        return self._push(SplitCluster(self, cluster, sub_labels, how))

    def split_auto(self, cluster: int, k: int | None = None) -> None:
        """Re-cluster one cluster's images (k fixed, or None = automatic) in a worker, then split it.

        `split_worker` is the running job; `splitFailed` carries a message when it cannot be done.
        """
        from imgclust_desktop.core.session import split_labels
        from imgclust_desktop.gui.worker import PipelineWorker

        session = self.session
        if not self.can_edit() or self.split_worker is not None:
            return
        seed = int((session.params or {}).get("seed", 0))

        def task(*, on_progress, cancelled, on_event):
            return split_labels(session, cluster, k, seed=seed, on_progress=on_progress, cancelled=cancelled)

        how = f"k={k}" if k else "automatic k"
        job = PipelineWorker(task, name="split")
        self.split_worker = job

        def finished(labels: Any) -> None:
            if self.session is not session or int(np.sum(session.labels == cluster)) != len(labels):
                # the session changed while the worker ran: the labels no longer fit
                self.splitFailed.emit("the clusters changed while the split was computed; try again")
                return
            if len(np.unique(labels)) < 2:
                self.splitFailed.emit(f"{session.name_of(cluster)} did not split: its images are too alike")
                return
            self.split(cluster, labels, how)

        job.finished.connect(finished)
        job.failed.connect(lambda message, _details: self.splitFailed.emit(message))
        job.done.connect(lambda: setattr(self, "split_worker", None))
        job.start()

    def rename(self, cluster: int, name: str) -> Any:
        from imgclust_desktop.gui.commands import RenameCluster

        name = str(name).strip()
        if not self.can_edit() or not name or name == self.session.name_of(cluster):
            return None
        return self._push(RenameCluster(self, cluster, name))

    def set_excluded(self, rows: Any, flag: bool, text: str | None = None) -> Any:
        from imgclust_desktop.gui.commands import SetExcluded

        rows = np.asarray(rows, dtype=np.int64).ravel()
        if not self.can_edit() or len(rows) == 0:
            return None
        return self._push(SetExcluded(self, rows, flag, text))

    def set_clusters_excluded(self, clusters: Any, flag: bool) -> Any:
        from imgclust_desktop.gui.commands import SetClusterExcluded

        ids = [int(c) for c in clusters if int(c) >= 0]
        if not self.can_edit() or not ids:
            return None
        return self._push(SetClusterExcluded(self, ids, flag))

    def keep_one_per_group(self, groups: list[tuple[int, list[int]]]) -> Any:
        """For each (row to keep, rows of its group): keep that row, exclude the rest."""
        from imgclust_desktop.gui.commands import KeepOnePerGroup

        if not self.can_edit() or not groups:
            return None
        return self._push(KeepOnePerGroup(self, groups))

    def apply_plan(self, plan: Any, text: str, op: str = "recut", **details: Any) -> Any:
        """Apply a core/recut.py plan (a re-cut, a drill-down, a fold) as one undoable step."""
        from imgclust_desktop.gui.commands import RecutTree

        if not self.can_edit() or self.session.tree is None:
            return None
        return self._push(RecutTree(self, plan, text, op, **details))

    def _push(self, command: Any) -> Any:
        self.undo_stack.push(command)
        return command

    def replace(self, session: Any, text: str) -> None:
        """Swap in a new version of the session as one undoable step."""
        self.undo_stack.push(ReplaceSession(self, session, text))

    def cut_tree(self, height: float) -> None:
        """Merge the clusters the cluster dendrogram joins below `height`, as one undoable step.

        Every cut starts from the session before the first cut, so lowering the line splits groups again.
        """
        base = self._cut[1] if self._cut is not None and self.session is self._cut[0] else self.session
        if base is None or base.linkage is None:
            return
        from imgclust_desktop.core.cluster import cut_linkage

        groups = cut_linkage(base.linkage, height).tolist()
        merged = dataclasses.replace(
            base,
            labels=base.labels.copy(),
            clusters={cid: dataclasses.replace(info) for cid, info in base.clusters.items()},
            excluded=base.excluded.copy(),  # later exclude edits must not reach back into `base`
            edits=list(base.edits),
        )
        for group in sorted(set(groups)):
            ids = [cid for cid, g in zip(base.linkage_cluster_ids, groups, strict=True) if g == group]
            if len(ids) > 1:
                merged.merge(ids)
        if merged.edits == base.edits and self.session is base:
            return  # the line sits below every merge: nothing to change, nothing to undo
        self._cut = (merged, base)
        self.replace(merged, f"Cut the tree at {height:.3g}")

    def cluster_count(self) -> int:
        """Number of clusters (noise excluded) in the current session."""
        if self.session is None:
            return 0
        return len(label_counts(np.asarray(self.session.labels))[0])


def make_thumbnails(keys: list[str], session: Any = None) -> Any:
    """A ThumbnailProvider over the on-disk thumbnail cache for these keys (None if views are absent).

    session: a row whose thumbnail is not in this cache has its file decoded on demand (a session made
    with another --cache-dir or --no-cache, copied from another machine, your own embeddings, a cleared
    cache: without it every tile stayed grey), and rows flagged missing get a placeholder tile.
    """
    try:
        from imgclust_desktop.core.cache import ThumbnailCache
        from imgclust_desktop.gui.thumbs import ThumbnailProvider
    except ModuleNotFoundError:
        return None
    extra: dict[str, Any] = {}
    if session is not None:
        extra["paths"] = session.paths
        if getattr(session, "missing", None) is not None:
            extra["missing"] = session.missing
    keys = keys if isinstance(keys, Sequence) else list(keys)  # FileKeys: found on first use, not copied
    return ThumbnailProvider(keys, ThumbnailCache(), 128, **extra)


class ReplaceSession(QUndoCommand):
    """An undoable swap of the whole session (a re-cluster): undo brings the previous result back."""

    def __init__(self, model: SessionModel, new_session: Any, text: str) -> None:
        super().__init__(text)
        self.model, self.old, self.new = model, model.session, new_session

    def redo(self) -> None:
        self.model.set_session(self.new, keep_history=True)

    def undo(self) -> None:
        self.model.set_session(self.old, keep_history=True)
