"""Where a run shows itself: the Progress dock (stage, count, rate, time left, Cancel, stage log) and the
centre's empty state, which invites a drop and, while a run has no map yet, says what is happening."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.core.progress import Progress


def format_seconds(seconds: float | None) -> str:
    """'1 h 02 min', '3 min 05 s', '12 s' or '—' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def describe(p: Progress) -> str:
    """One line for the status bar: 'features 120/500 · 85 img/s · 4 s left'."""
    parts = [p.stage]
    if p.total:
        parts[0] += f" {p.done:,}/{p.total:,}"
    if p.rate:
        parts.append(f"{p.rate:,.0f}/s")
    if p.eta is not None:
        parts.append(f"{format_seconds(p.eta)} left")
    if p.message:
        parts.append(p.message)
    return " · ".join(parts)


class ProgressPanel(QWidget):
    """Shows what the worker is doing now; Cancel asks it to stop."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Idle")
        self.title.setStyleSheet("font-weight: bold")
        self.stage = QLabel("—")
        self.count = QLabel("—")
        self.rate = QLabel("—")
        self.eta = QLabel("—")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)  # "0%" while idle reads like a stalled task
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.log = QListWidget()
        self.log.setAlternatingRowColors(True)
        # Stage messages can be long ("features — EfficientNet-Lite0 at 64 px, batch 8 on cpu ..."): they wrap
        # instead of widening the dock past the window's edge.
        for label in (self.title, self.stage):
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        grid = QGridLayout()
        for row, (name, value) in enumerate(
            [("Stage", self.stage), ("Done", self.count), ("Speed", self.rate), ("Time left", self.eta)]
        ):
            grid.addWidget(QLabel(name + ":"), row, 0)
            grid.addWidget(value, row, 1)
        grid.setColumnStretch(1, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(grid)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        layout.addWidget(QLabel("Stages:"))
        layout.addWidget(self.log, 1)
        self._stage_name: str | None = None
        self._stage_start = 0.0
        self._task_start = 0.0

    def start(self, title: str) -> None:
        """A new task begins: reset the counters and enable Cancel."""
        self.title.setText(title)
        self.log.clear()
        self.bar.setRange(0, 0)  # busy until the first count arrives
        self.stage.setText("starting")
        for label in (self.count, self.rate, self.eta):
            label.setText("—")
        self.cancel_button.setEnabled(True)
        self._stage_name = None
        self._task_start = self._stage_start = time.perf_counter()

    def update_progress(self, p: Progress) -> None:
        """Show one progress report from the worker."""
        if p.stage != self._stage_name:
            self._close_stage()
            self._stage_name, self._stage_start = p.stage, time.perf_counter()
        self.stage.setText(p.stage + (f" — {p.message}" if p.message else ""))
        if p.total:
            self.bar.setTextVisible(True)
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
            self.count.setText(f"{p.done:,} / {p.total:,}")
        else:
            self.bar.setTextVisible(False)
            self.bar.setRange(0, 0)
            self.count.setText("—")
        self.rate.setText(f"{p.rate:,.1f} items/s" if p.rate else "—")
        self.eta.setText(format_seconds(p.eta))

    def finish(self, message: str) -> None:
        """The task ended (done, cancelled or failed): log it and disable Cancel."""
        self._close_stage()
        total = time.perf_counter() - self._task_start
        self.log.addItem(f"{message} ({total:.1f} s in all)")
        self.title.setText(message)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if message.lower().startswith("done") else 0)
        self.stage.setText(message.split(":")[0].lower())
        for label in (self.rate, self.eta):
            label.setText("—")
        self.cancel_button.setEnabled(False)
        self._stage_name = None

    def _close_stage(self) -> None:
        if self._stage_name is not None:
            self.log.addItem(f"{self._stage_name}: {time.perf_counter() - self._stage_start:.1f} s")


class EmptyState(QWidget):
    """What the centre shows before any images: an invitation to drop a folder or open the demo."""

    def __init__(self, demo: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Drop a folder of images here")
        self.headline.setStyleSheet("font-size: 20pt; font-weight: bold")
        self.detail = QLabel(
            "…or several folders, some image files, or a saved session folder.\n"
            "Similar images are grouped into clusters you can check, fix and export."
        )
        self.detail.setStyleSheet("color: palette(mid); font-size: 11pt")
        self.open_folder = QPushButton("Open Folder…")
        self.open_session = QPushButton("Open Session…")
        self.demo = QPushButton("Try the demo images")
        self.demo.setEnabled(demo.is_dir())
        if not self.demo.isEnabled():
            self.demo.setToolTip(f"No demo images found at {demo}")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.open_folder, self.open_session, self.demo):
            button.setMinimumHeight(32)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        for label in (self.headline, self.detail):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        layout.addSpacing(16)
        layout.addLayout(buttons)
        layout.addStretch(3)

    def set_busy(self, text: str | None) -> None:
        """While a run has no map yet, the centre says what is happening instead of inviting a drop."""
        self.headline.setText(text or "Drop a folder of images here")
        for button in (self.open_folder, self.open_session, self.demo):
            button.setVisible(text is None)
