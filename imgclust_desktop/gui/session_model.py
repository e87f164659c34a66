"""The Qt skin over core.Session: the one place views read state and hear about changes."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

SELECT_MODES = ("replace", "add", "subtract")


class SessionModel(QObject):
    """Holds the current Session, its thumbnails, the selection and the undo history."""

    changed = Signal()  # any edit or new session; views re-read labels/names
    selectionChanged = Signal(object)  # np.ndarray of row indices

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None  # core.session.Session | None
        self.thumbnails: Any = None  # gui.thumbs.ThumbnailProvider | None
        self.undo_stack = QUndoStack(self)
        self.selection = np.empty(0, dtype=np.int64)
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
        self.changed.emit()
        self.selectionChanged.emit(self.selection)

    def row_count(self) -> int:
        return 0 if self.session is None else len(self.session.paths)

    def select(self, indices: Any, mode: str = "replace") -> None:
        """Change the selection: replace it, add rows to it or subtract rows from it."""
        if mode not in SELECT_MODES:
            raise ValueError(f"mode must be one of {SELECT_MODES}, not {mode!r}")
        rows = np.unique(np.asarray(indices, dtype=np.int64).ravel())
        rows = rows[(rows >= 0) & (rows < self.row_count())]
        if mode == "add":
            rows = np.union1d(self.selection, rows)
        elif mode == "subtract":
            rows = np.setdiff1d(self.selection, rows)
        if np.array_equal(rows, self.selection):
            return
        self.selection = rows
        self.selectionChanged.emit(rows)

    def notify(self) -> None:
        """Tell the views the session was edited in place."""
        self.changed.emit()

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
        labels = np.asarray(self.session.labels)
        return int(np.unique(labels[labels >= 0]).size)


def make_thumbnails(keys: list[str]) -> Any:
    """A ThumbnailProvider over the on-disk thumbnail cache for these keys (None if views are absent)."""
    try:
        from imgclust_desktop.core.cache import ThumbnailCache
        from imgclust_desktop.gui.thumbs import ThumbnailProvider
    except ModuleNotFoundError:
        return None
    return ThumbnailProvider(list(keys), ThumbnailCache(), 128)


class ReplaceSession(QUndoCommand):
    """An undoable swap of the whole session (a re-cluster): undo brings the previous result back."""

    def __init__(self, model: SessionModel, new_session: Any, text: str) -> None:
        super().__init__(text)
        self.model, self.old, self.new = model, model.session, new_session

    def redo(self) -> None:
        self.model.set_session(self.new, keep_history=True)

    def undo(self) -> None:
        self.model.set_session(self.old, keep_history=True)
