"""The granularity control: fewer groups ... more groups over the cluster tree, and drill-down of one cluster.

Every change is a core/recut.py plan applied as one undoable step (SessionModel.apply_plan). When the
person's edits cannot carry over (a renamed group would be split, ...), the plan's warnings are shown
first and nothing changes unless the person says so.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QSlider, QSpinBox, QWidget

from imgclust_desktop.gui.worker import collector_paused


def slider_levels(tree: Any) -> list[int]:
    """The group counts the slider stops at: the tree's stored levels plus geometric steps between them
    (core/tree.ClusterTree.browse_levels; their medoids and names are ready, so no stop reads features)."""
    return tree.browse_levels()


def tree_count_at(tree: Any, height: float) -> int:
    """How many groups the tree leaves when it is cut at this merge height."""
    heights = np.asarray(tree.linkage[:, 2], float)
    return tree.clamp(tree.n_leaves - int(np.searchsorted(heights, height, side="right")))


def height_of_level(tree: Any, k: int) -> float:
    """A merge height whose cut gives k groups: half-way between the last merge made and the next."""
    heights = np.asarray(tree.linkage[:, 2], float)
    m = tree.n_leaves
    k = tree.clamp(k)
    if len(heights) == 0:
        return 0.0
    below = heights[m - k - 1] if m - k - 1 >= 0 else 0.0
    above = heights[m - k] if m - k < len(heights) else heights[-1] * 1.04 + 1e-9
    return float((below + above) / 2)


class GranularityControl(QWidget):
    """fewer groups [slider] more groups [count] [Default]: asks for a level; the window re-cuts."""

    levelRequested = Signal(int)

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.levels: list[int] = []
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(180)
        self.slider.setToolTip("Drag for fewer or more groups (a cut of the cluster tree; undo with Ctrl+Z)")
        self.count = QSpinBox()
        self.count.setSuffix(" groups")
        self.count.setToolTip("The number of groups (any cut of the tree)")
        self.count.setKeyboardTracking(False)
        self.default = QPushButton("Default")
        self.default.setToolTip("The level chosen automatically")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(QLabel("fewer groups"))
        layout.addWidget(self.slider, 1)
        layout.addWidget(QLabel("more groups"))
        layout.addWidget(self.count)
        layout.addWidget(self.default)
        self._syncing = False
        # keyboard / wheel steps settle for a moment before a re-cut; a drag re-cuts on release
        self._settle = QTimer(self, singleShot=True, interval=250)
        self._settle.timeout.connect(self._request_slider)
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderReleased.connect(self._request_slider)
        self.count.valueChanged.connect(self._count_changed)
        self.default.clicked.connect(self._request_default)
        model.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Follow the session: its tree's levels and the current number of groups."""
        session = self.model.session
        tree = None if session is None else getattr(session, "tree", None)
        self.setEnabled(tree is not None and tree.n_leaves > 1)
        self._syncing = True
        try:
            if tree is None:
                self.levels = []
                self.count.setRange(0, 0)
                self.setToolTip("Fewer / more groups needs a session clustered with the tree (the default)")
                return
            self.setToolTip("")
            self.levels = slider_levels(tree)
            self.slider.setRange(0, len(self.levels) - 1)
            self.count.setRange(1, tree.n_leaves)
            current = len(session.cluster_ids())
            self.count.setValue(current)
            self.slider.setValue(self.position_of(session.level if session.level is not None else current))
        finally:
            self._syncing = False

    def position_of(self, k: int) -> int:
        """The slider stop nearest k groups."""
        return int(np.argmin(np.abs(np.asarray(self.levels) - int(k)))) if self.levels else 0

    def level_at(self, position: int) -> int:
        return self.levels[int(position)]

    def _slider_moved(self, position: int) -> None:
        if self._syncing or not self.levels:
            return
        self._syncing = True
        self.count.setValue(self.level_at(position))
        self._syncing = False
        if not self.slider.isSliderDown():
            self._settle.start()

    def _request_slider(self) -> None:
        self._settle.stop()
        if self.levels:
            self.levelRequested.emit(self.level_at(self.slider.value()))

    def _count_changed(self, k: int) -> None:
        if not self._syncing and self.levels:
            self.levelRequested.emit(int(k))

    def _request_default(self) -> None:
        session = self.model.session
        if session is not None and session.tree is not None:
            self.levelRequested.emit(int(session.tree.default_k))


class Granularity(QObject):
    """The window's side: a toolbar with the control, re-cuts and drill-downs with warnings asked first."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window, self.model = window, window.model
        self.control = GranularityControl(self.model)
        self.toolbar = window.addToolBar("Granularity")
        self.toolbar.setObjectName("toolbar-granularity")
        self.toolbar.addWidget(self.control)
        self.control.levelRequested.connect(self.recut)
        self.last_ms = 0.0  # how long the last re-cut took, views included (shown in the status bar)
        # While the window is idle, the slider stops' names and drawn trees are worked out ahead
        # (core/recut.prepare_levels), one level per turn of the event loop, so that the slider's re-cut
        # to them only reads them. Off: every level is worked out when it is asked for.
        self.prepare_ahead = True
        self._ahead: Any = None  # (what it is for: tree, paths, words), the steps left
        self._ahead_timer = QTimer(self, interval=0)
        self._ahead_timer.timeout.connect(self._prepare_step)
        self.model.changed.connect(self._prepare_levels)
        self.model.sessionReplaced.connect(self._prepare_levels)
        actions = getattr(getattr(window, "curation", None), "actions", None)
        if actions is not None:
            actions.cluster_menu_hooks.append(self.add_menu_actions)
        if hasattr(window.scatter, "legend_menu_hooks"):
            window.scatter.legend_menu_hooks.append(self.add_menu_actions)
        if hasattr(window.dendrogram, "contextMenuRequested") and actions is not None:
            window.dendrogram.contextMenuRequested.connect(actions.context_menu)

    # ---- working out the slider's levels ahead
    def _prepare_levels(self, *_args: Any) -> None:
        """A new session, tree, image list or set of words: start over on its levels (else carry on)."""
        from imgclust_desktop.core.recut import prepare_levels

        session = self.model.session
        tree = None if session is None else session.tree
        if tree is None or not self.prepare_ahead:
            self._ahead = None
            self._ahead_timer.stop()
            return
        key = (tree, session.paths, session.leaf_terms)
        if self._ahead is not None and all(a is b for a, b in zip(self._ahead[0], key, strict=True)):
            return
        self._ahead = (key, prepare_levels(session))
        self._ahead_timer.start()

    def _prepare_step(self) -> None:
        if self._ahead is None:
            self._ahead_timer.stop()
            return
        with collector_paused():
            step = next(self._ahead[1], None)
        if step is None:
            self._ahead_timer.stop()  # done: the key stays, so the same session does not start again

    # ---- re-cut
    def recut(self, k: int) -> bool:
        """Show the tree at k groups as one undoable step; False when nothing changed or the person declined."""
        from imgclust_desktop.core.recut import plan_recut

        session = self.model.session
        if session is None or session.tree is None or not self.model.can_edit():
            return False
        start = time.perf_counter()
        with collector_paused():  # one pause for the plan and its apply (views included): one collection
            plan = plan_recut(session, k)
            if plan.k == session.level and np.array_equal(plan.labels, session.labels):
                self.control.refresh()
                return False
            if not self.confirm(plan, f"Show {plan.k} groups?"):
                self.control.refresh()
                return False
            self.model.apply_plan(plan, f"Show {plan.k} groups")
        self.last_ms = (time.perf_counter() - start) * 1000
        self._say(f"{len(session.cluster_ids())} groups (re-cut in {self.last_ms:.0f} ms)")
        return True

    def recut_to_height(self, height: float) -> bool:
        """The dendrogram's cut line was released at this height."""
        session = self.model.session
        if session is None or session.tree is None:
            return False
        return self.recut(tree_count_at(session.tree, height))

    # ---- drill-down
    def expand(self, cluster: int) -> bool:
        """Open one cluster into its two sub-groups in the tree (one undoable step)."""
        from imgclust_desktop.core.recut import RecutError, expand_cluster

        return self._drill(expand_cluster, RecutError, cluster, "Show sub-groups of", "expand")

    def collapse(self, cluster: int) -> bool:
        """Fold a cluster and its tree siblings back into their parent group (one undoable step)."""
        from imgclust_desktop.core.recut import RecutError, collapse_cluster

        return self._drill(collapse_cluster, RecutError, cluster, "Fold into its parent:", "collapse")

    def _drill(self, make_plan: Any, error: type, cluster: int, verb: str, op: str) -> bool:
        session = self.model.session
        if session is None or session.tree is None or not self.model.can_edit():
            return False
        name = session.name_of(cluster)
        try:
            plan = make_plan(session, cluster)
        except error as exc:
            self._say(str(exc))
            return False
        if not self.confirm(plan, f"{verb} {name}?"):
            return False
        self.model.apply_plan(plan, f"{verb} {name}", op, cluster=int(cluster))
        return True

    def add_menu_actions(self, menu: Any, cluster: int) -> None:
        """Context menus of the legend, the grid, the map and the dendrogram: drill down / fold back."""
        session = self.model.session
        if session is None or session.tree is None or cluster is None or cluster < 0:
            return
        info = session.clusters.get(int(cluster))
        if info is None or info.node is None:
            return
        opened = menu.addAction("Show sub-groups", lambda: self.expand(int(cluster)))
        opened.setEnabled(info.node >= session.tree.n_leaves)
        menu.addAction("Collapse into parent", lambda: self.collapse(int(cluster)))

    # ---- asking first
    def confirm(self, plan: Any, title: str) -> bool:
        """True when the plan has no warnings, or the person agrees to lose what they list."""
        if not plan.warnings:
            return True
        lines = "\n".join(f"• {w}" for w in plan.warnings[:12])
        more = f"\n… and {len(plan.warnings) - 12} more" if len(plan.warnings) > 12 else ""
        answer = QMessageBox.question(
            self.window,
            title,
            f"These edits cannot carry over:\n{lines}{more}\n\nRe-cut anyway? (Undo brings them back.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _say(self, text: str) -> None:
        label = getattr(self.window, "status_label", None)
        if label is not None:
            label.setText(text)


def install_granularity(window: Any) -> Granularity:
    """Add the granularity toolbar and the drill-down menu entries to a MainWindow."""
    return Granularity(window)
