"""Curation actions: the Edit-menu entries (with shortcuts) and the context menus of the map and the grid.

Each action turns the current selection / cluster into one undoable SessionModel edit. The cluster an
action works on is the one the context menu was opened on, else the one the cluster grid shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPoint
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

NEW_CLUSTER = "New cluster…"


class CurationActions(QObject):
    """Owns the edit QActions; `current_cluster` is a callable giving the cluster in focus (or None)."""

    def __init__(self, model: Any, parent: QWidget, current_cluster: Callable[[], int | None]) -> None:
        super().__init__(parent)
        self.model, self.window = model, parent
        self._current_cluster = current_cluster
        self.context_cluster: int | None = None  # set while a context menu is open
        self.find_similar: Callable[[], None] = lambda: None  # the window points this at the search panel
        self.cluster_menu_hooks: list[Callable[[Any, int], None]] = []  # (menu, cluster): more actions

        def make(text: str, slot: Callable, shortcut: Any = None, tip: str = "") -> QAction:
            action = QAction(text, parent)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            action.setToolTip(tip or text)
            action.triggered.connect(slot)
            return action

        self.move_to = make("&Move Selection to Cluster…", self.ask_move, "Ctrl+M")
        self.move_new = make("Move Selection to &New Cluster", self.move_to_new, "Ctrl+Shift+N")
        self.merge = make("Mer&ge Clusters of Selection", self.merge_selection, "Ctrl+Shift+M")
        self.split = make("&Split Cluster…", self.ask_split, "Ctrl+K")
        self.rename = make("&Rename Cluster…", self.ask_rename, "F2")
        self.exclude = make("E&xclude Selection", lambda: self.mark(True), "Del")
        self.keep = make("&Keep Selection", lambda: self.mark(False), "Shift+Del")
        self.exclude_cluster = make("Exclude &Cluster", lambda: self.mark_cluster(True), "Ctrl+Del")
        self.keep_cluster = make("Keep Cl&uster", lambda: self.mark_cluster(False), "Ctrl+Shift+Del")
        self.similar = make("&Find Similar Images", lambda: self.find_similar(), "Ctrl+F")
        self.selection_actions = [
            self.move_to,
            self.move_new,
            self.merge,
            self.exclude,
            self.keep,
            self.similar,
        ]
        self.cluster_actions = [self.split, self.rename, self.exclude_cluster, self.keep_cluster]
        model.changed.connect(self.update_enabled)
        model.selectionChanged.connect(lambda _rows: self.update_enabled())
        self.update_enabled()

    def all(self) -> list[QAction]:
        return [
            self.move_to, self.move_new, self.merge, self.split, self.rename,
            self.exclude, self.keep, self.exclude_cluster, self.keep_cluster, self.similar,
        ]  # fmt: skip

    def add_to_menu(self, menu: QMenu) -> None:
        for group in (
            [self.move_to, self.move_new, self.merge, self.split, self.rename],
            [self.exclude, self.keep, self.exclude_cluster, self.keep_cluster],
            [self.similar],
        ):
            menu.addSeparator()
            menu.addActions(group)

    def update_enabled(self) -> None:
        can = self.model.can_edit()
        has_selection = can and len(self.model.selection) > 0
        for action in self.selection_actions:
            action.setEnabled(has_selection)
        cluster = self.cluster() if can else None
        for action in self.cluster_actions:
            action.setEnabled(cluster is not None and cluster >= 0)
        self.merge.setEnabled(has_selection and len(self.selected_clusters()) > 1)

    # -- what the actions act on ------------------------------------------------------------------------
    def cluster(self) -> int | None:
        """The context menu's cluster, else the selection's only cluster, else the grid's current one."""
        if self.context_cluster is not None:
            return self.context_cluster
        clusters = self.selected_clusters()
        if len(clusters) == 1:
            return clusters[0]
        return self._current_cluster()

    def selected_clusters(self) -> list[int]:
        session = self.model.session
        rows = np.asarray(self.model.selection, dtype=np.int64)
        if session is None or len(rows) == 0:
            return []
        return sorted(int(c) for c in np.unique(session.labels[rows]) if c >= 0)

    # -- the edits --------------------------------------------------------------------------------------
    def ask_move(self) -> None:
        session = self.model.session
        if session is None or len(self.model.selection) == 0:
            return
        ids = session.cluster_ids()
        names = [f"{session.name_of(c)}  [{c}]" for c in ids] + [NEW_CLUSTER]
        choice, ok = QInputDialog.getItem(
            self.window, "Move images", f"Move {len(self.model.selection):,} images to:", names, 0, False
        )
        if ok and choice:
            if choice == NEW_CLUSTER:
                self.move_to_new()
            else:
                self.model.assign(self.model.selection, ids[names.index(choice)])

    def move_to_new(self) -> None:
        if len(self.model.selection):
            self.model.assign(self.model.selection, None)

    def merge_selection(self) -> None:
        self.model.merge(self.selected_clusters())

    def ask_split(self) -> None:
        cluster = self.cluster()
        session = self.model.session
        if cluster is None or cluster < 0 or session is None:
            return
        size = int(np.sum(session.labels == cluster))
        if size < 2:
            return
        k, ok = QInputDialog.getInt(
            self.window,
            "Split cluster",
            f"Split {session.name_of(cluster)} ({size:,} images) into how many clusters?\n"
            "0 = choose automatically",
            0, 0, min(size, 50),
        )  # fmt: skip
        if ok:
            self.model.split_auto(cluster, k or None)

    def ask_rename(self) -> None:
        cluster = self.cluster()
        session = self.model.session
        if cluster is None or cluster < 0 or session is None:
            return
        name, ok = QInputDialog.getText(self.window, "Rename cluster", "Name:", text=session.name_of(cluster))
        if ok:
            self.model.rename(cluster, name)

    def mark(self, flag: bool) -> None:
        self.model.set_excluded(self.model.selection, flag)

    def mark_cluster(self, flag: bool) -> None:
        cluster = self.cluster()
        if cluster is not None and cluster >= 0:
            self.model.set_clusters_excluded([cluster], flag)

    # -- context menus ----------------------------------------------------------------------------------
    def context_menu(self, cluster: int | None, global_pos: QPoint | None = None) -> QMenu:
        """A menu for the selection and `cluster`; shown at global_pos when given."""
        self.context_cluster = cluster
        self.update_enabled()
        menu = QMenu(self.window)
        session = self.model.session
        n = len(self.model.selection)
        if n:
            menu.addSection(f"{n:,} selected image{'s' if n != 1 else ''}")
            move = menu.addMenu("Move to")
            if session is not None:
                for cid in session.cluster_ids()[:40]:
                    move.addAction(
                        session.name_of(cid), lambda c=cid: self.model.assign(self.model.selection, c)
                    )
            move.addSeparator()
            move.addAction("New cluster", self.move_to_new)
            menu.addActions([self.move_to, self.merge, self.exclude, self.keep, self.similar])
        if cluster is not None and cluster >= 0 and session is not None:
            menu.addSection(session.name_of(cluster))
            menu.addActions([self.split, self.rename, self.exclude_cluster, self.keep_cluster])
            for add_actions in self.cluster_menu_hooks:  # e.g. the tree's "Show sub-groups" (granularity.py)
                add_actions(menu, cluster)
        menu.aboutToHide.connect(self._menu_closed)
        if global_pos is not None:
            menu.popup(global_pos)
        return menu

    def _menu_closed(self) -> None:
        # actions fire after aboutToHide: forget the menu's cluster only once they have run
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self._forget_context)

    def _forget_context(self) -> None:
        self.context_cluster = None
        self.update_enabled()
