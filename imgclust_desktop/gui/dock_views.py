"""Views in docks re-read the session only while their dock is on screen.

The docks under the map are tabbed: one is in front, the others wait behind it. A view behind another would
otherwise rebuild on every edit and every re-cut (2,000 groups: a dendrogram and a list nobody sees). Hidden,
it only notes that the session changed, and re-reads once when its dock comes to the front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDockWidget


class RefreshWhileShown(QObject):
    """Stands between a model signal and a view's refresh: passes it on while the dock is shown."""

    def __init__(self, dock: QDockWidget, signal: Any, refresh: Callable[[], None]) -> None:
        super().__init__(dock)
        self.refresh = refresh
        self.shown = True  # until the dock says otherwise: a window never shown refreshes at once
        self.stale = False
        signal.disconnect(refresh)
        signal.connect(self._changed)
        dock.visibilityChanged.connect(self._visibility)

    def _changed(self) -> None:
        if self.shown:
            self.refresh()
        else:
            self.stale = True

    def _visibility(self, shown: bool) -> None:
        self.shown = bool(shown)
        if self.shown and self.stale:
            self.stale = False
            self.refresh()


def refresh_while_shown(dock: QDockWidget, signal: Any, view: Any, slot: str = "refresh") -> Any:
    """Route `signal` to view.<slot> only while the dock is shown (None: the view has no such slot)."""
    refresh = getattr(view, slot, None)
    if refresh is None:
        return None
    return RefreshWhileShown(dock, signal, refresh)
