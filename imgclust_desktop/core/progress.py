"""Progress reports and cancellation shared by every long-running stage."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a stage when its `cancelled()` flag turns true."""


@dataclass(frozen=True)
class Progress:
    stage: str
    done: int
    total: int
    rate: float | None = None  # items per second
    eta: float | None = None  # seconds left
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]
CancelFlag = Callable[[], bool]


def no_progress(_: Progress) -> None:
    """Default progress callback: ignore."""


def never_cancelled() -> bool:
    return False


class RateMeter:
    """Turns (done, total) counts into Progress with rate and time left for one stage."""

    def __init__(
        self, stage: str, total: int, on_progress: ProgressCallback = no_progress, min_interval: float = 0.1
    ) -> None:
        self.stage, self.total, self.on_progress = stage, total, on_progress
        self.min_interval = min_interval
        self._start = time.perf_counter()
        self._last_emit = 0.0

    def update(self, done: int, message: str = "", force: bool = False) -> None:
        now = time.perf_counter()
        if not force and done < self.total and now - self._last_emit < self.min_interval:
            return
        self._last_emit = now
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 and done > 0 else None
        eta = (self.total - done) / rate if rate else None
        self.on_progress(Progress(self.stage, done, self.total, rate, eta, message))


def check_cancel(cancelled: CancelFlag) -> None:
    if cancelled():
        raise Cancelled()
