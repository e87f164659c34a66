"""Views in tabbed docks re-read the session while their dock is in front, and once when it comes back."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow

from imgclust_desktop.gui.dock_views import refresh_while_shown


class Model(QObject):
    changed = Signal()


class CountingView(QLabel):
    def __init__(self, model: Model) -> None:
        super().__init__("view")
        self.refreshed = 0
        model.changed.connect(self.refresh)

    def refresh(self) -> None:
        self.refreshed += 1


def test_a_view_behind_another_tab_waits_and_catches_up_once_in_front(qtbot):
    model = Model()
    window = QMainWindow()
    qtbot.addWidget(window)
    window.setCentralWidget(QLabel("map"))
    views, docks = [], []
    for name in ("front", "behind"):
        view = CountingView(model)
        dock = QDockWidget(name, window)
        dock.setObjectName(name)
        dock.setWidget(view)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        refresh_while_shown(dock, model.changed, view)
        views.append(view)
        docks.append(dock)
    window.tabifyDockWidget(docks[0], docks[1])
    docks[0].raise_()
    window.show()
    qtbot.waitExposed(window)
    for _ in range(3):  # three edits while the second view is behind the first
        model.changed.emit()
    assert views[0].refreshed == 3 and views[1].refreshed == 0
    docks[1].raise_()
    qtbot.waitUntil(lambda: views[1].refreshed == 1, timeout=2000)
    model.changed.emit()
    assert views[1].refreshed == 2 and views[0].refreshed == 3  # now the first one waits
