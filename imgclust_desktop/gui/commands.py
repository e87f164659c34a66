"""One QUndoCommand per curation edit; the undo stack owns them.

Every command calls one Session edit method (which appends to `session.edits`) the first time it runs and
records what changed: the rows whose label or exclusion flag moved, the cluster table and the new log
entries. Undo puts the recorded "before" back and drops those log entries, redo puts the "after" back, so
redoing a split does not re-cluster and gets the same cluster ids again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QUndoCommand

from imgclust_desktop.gui.worker import collector_paused


class SessionEdit(QUndoCommand):
    """Base: runs `apply()` once, then undo/redo swap between the recorded states of the session."""

    def __init__(self, model: Any, text: str) -> None:
        super().__init__(text)
        self.model = model
        self.session = model.session  # the session this edit belongs to, even after a later replace
        self._done = False
        self._rows = np.zeros(0, dtype=np.int64)
        self._labels: tuple[np.ndarray, np.ndarray] | None = None  # (before, after) for _rows
        self._excluded_rows = np.zeros(0, dtype=np.int64)
        self._clusters: tuple[dict, dict] = ({}, {})
        self._log: list[dict] = []
        self._log_start = 0

    def apply(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def redo(self) -> None:
        s = self.session
        if not self._done:
            labels, excluded = s.labels.copy(), s.excluded.copy()
            clusters, self._log_start = dict(s.clusters), len(s.edits)
            self.apply()
            self._rows = np.flatnonzero(labels != s.labels)
            self._labels = (labels[self._rows], s.labels[self._rows].copy())
            self._excluded_rows = np.flatnonzero(excluded != s.excluded)
            self._clusters = (clusters, dict(s.clusters))
            self._log = list(s.edits[self._log_start :])
            self._done = True
        else:
            self._restore(after=True)
            s.edits.extend(self._log)
        self.model.edited(self)

    def undo(self) -> None:
        self._restore(after=False)
        del self.session.edits[self._log_start :]
        self.model.edited(self)

    def _restore(self, *, after: bool) -> None:
        s = self.session
        s.labels[self._rows] = self._labels[1 if after else 0]
        # exclusion is a flag: the rows that flipped flip back
        s.excluded[self._excluded_rows] = ~s.excluded[self._excluded_rows]
        s.clusters.clear()
        s.clusters.update(self._clusters[1 if after else 0])

    @property
    def changed_rows(self) -> np.ndarray:
        """Rows whose cluster this edit changed (for tests and the status bar)."""
        return self._rows


class AssignToCluster(SessionEdit):
    """Move images into an existing cluster, or into a new one when cluster is None."""

    def __init__(self, model: Any, rows: Any, cluster: int | None, name: str | None = None) -> None:
        s = model.session
        self.rows = np.asarray(rows, dtype=np.int64).ravel()
        self.cluster, self.name = cluster, name
        target = f"a new cluster{f' {name!r}' if name else ''}" if cluster is None else s.name_of(cluster)
        super().__init__(model, f"Move {_images(len(self.rows))} to {target}")

    def apply(self) -> None:
        if self.cluster is None:
            self.cluster = self.session.split(self.rows, name=self.name)
        else:
            self.session.assign(self.rows, self.cluster)


class MergeClusters(SessionEdit):
    """Put every image of several clusters into one (default: the largest)."""

    def __init__(self, model: Any, clusters: Any, into: int | None = None) -> None:
        self.clusters = sorted({int(c) for c in clusters})
        self.into = into
        names = ", ".join(model.session.name_of(c) for c in self.clusters[:4])
        more = f" and {len(self.clusters) - 4} more" if len(self.clusters) > 4 else ""
        super().__init__(model, f"Merge {names}{more}")

    def apply(self) -> None:
        self.into = self.session.merge(self.clusters, into=self.into)


class SplitCluster(SessionEdit):
    """Split a cluster by sub-labels computed by core.session.split_labels (re-clustering its images)."""

    def __init__(self, model: Any, cluster: int, sub_labels: Any, how: str = "") -> None:
        self.cluster, self.sub_labels, self.how = int(cluster), np.asarray(sub_labels), how
        self.parts: list[int] = []
        super().__init__(model, f"Split {model.session.name_of(cluster)}{f' ({how})' if how else ''}")

    def apply(self) -> None:
        self.parts = self.session.split_cluster(self.cluster, self.sub_labels, method=self.how)


class RenameCluster(SessionEdit):
    def __init__(self, model: Any, cluster: int, name: str) -> None:
        self.cluster, self.name = int(cluster), str(name)
        super().__init__(model, f"Rename {model.session.name_of(cluster)} to {name!r}")

    def apply(self) -> None:
        self.session.rename(self.cluster, self.name)


class SetExcluded(SessionEdit):
    """Mark images excluded from export (flag True) or kept again (False)."""

    def __init__(self, model: Any, rows: Any, flag: bool, text: str | None = None) -> None:
        self.rows, self.flag = np.asarray(rows, dtype=np.int64).ravel(), bool(flag)
        verb = "Exclude" if flag else "Keep"
        super().__init__(model, text or f"{verb} {_images(len(self.rows))}")

    def apply(self) -> None:
        self.session.set_excluded(self.rows, self.flag)


class SetClusterExcluded(SessionEdit):
    """Mark whole clusters excluded from export by default (or kept again)."""

    def __init__(self, model: Any, clusters: Any, flag: bool) -> None:
        self.clusters, self.flag = [int(c) for c in clusters], bool(flag)
        names = ", ".join(model.session.name_of(c) for c in self.clusters[:4])
        super().__init__(model, f"{'Exclude' if flag else 'Keep'} {names}")

    def apply(self) -> None:
        for cid in self.clusters:
            self.session.set_cluster_excluded(cid, self.flag)


class KeepOnePerGroup(SessionEdit):
    """Near-duplicates: in each group keep the chosen image and exclude the others."""

    def __init__(self, model: Any, groups: list[tuple[int, list[int]]]) -> None:
        self.groups = [(int(keep), [int(r) for r in rows]) for keep, rows in groups]
        super().__init__(model, f"Keep one image of {len(self.groups)} duplicate group(s)")

    def apply(self) -> None:
        keep = [k for k, _rows in self.groups]
        drop = sorted({r for k, rows in self.groups for r in rows if r != k})
        self.session.set_excluded(keep, False)
        self.session.set_excluded(drop, True)


class RecutTree(SessionEdit):
    """Show the cluster tree at another level, or one cluster opened / folded (core/recut.py plans).

    Besides what every edit records, the level and the linkage the dendrogram draws are swapped too.
    """

    def __init__(self, model: Any, plan: Any, text: str, op: str = "recut", **details: Any) -> None:
        self.plan, self.op, self.details = plan, op, details
        self._tree_state: tuple[tuple, tuple] | None = None
        super().__init__(model, text)

    def apply(self) -> None:
        from imgclust_desktop.core.recut import apply_recut

        apply_recut(self.session, self.plan, op=self.op, **self.details)

    def _state(self) -> tuple:
        s = self.session
        return s.level, s.linkage, list(s.linkage_cluster_ids), dict(s.node_curation)

    def redo(self) -> None:
        with collector_paused():  # thousands of new cluster records, and the views' rows for them
            if self._tree_state is None:
                before = self._state()
                super().redo()
                self._tree_state = (before, self._state())
            else:
                self._set_state(self._tree_state[1])
                super().redo()

    def undo(self) -> None:
        with collector_paused():
            self._set_state(self._tree_state[0])
            super().undo()

    def _set_state(self, state: tuple) -> None:
        s = self.session
        s.level, s.linkage, ids, memory = state
        s.linkage_cluster_ids = list(ids)
        s.node_curation = dict(memory)


def _images(n: int) -> str:
    return f"{n:,} image{'s' if n != 1 else ''}"
