"""Thumbnails for widgets: read from the core ThumbnailCache and decoded off the GUI thread, LRU-bounded."""

from __future__ import annotations

import io
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap

# Decoded QImages (RGB32, 128 px long edge -> <= 64 KiB each). 256 MiB ~ 4,000 thumbnails: the scatter's
# 400 on screen plus many grid pages; the rest stays in the sqlite cache as JPEG and is decoded again.
DEFAULT_IMAGE_BUDGET = 256 * 1024 * 1024
# JPEG bytes handed over by put() while the pipeline runs (~3-8 KiB each); bounded so a huge run cannot
# grow without limit; an evicted one is reloaded from the on-disk cache, which the pipeline also fills.
DEFAULT_JPEG_BUDGET = 256 * 1024 * 1024
_BATCH = 48  # keys per cache.get_many: one sqlite round trip amortised over a screenful
_MAX_PENDING = 4096  # older requests are dropped: the view has moved on


def decode_thumbnail(data: bytes) -> QImage:
    """JPEG/PNG bytes -> an RGB32 QImage (the fast format to paint); a null QImage when they do not decode.

    Safe to call from a worker thread: Pillow decodes with the GIL released and the QImage is built from
    raw pixels. Not QImage.fromData: its format probing runs Qt's SVG reader, which locks QObject's global
    signal-slot mutexes while this thread holds the GIL; the GUI thread destroying a widget holds such a
    mutex and waits for the GIL, and both hang (seen as a once-in-a-few-runs hang of the test suite).
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            rgb = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return QImage()
    raw = rgb.tobytes()
    wrapped = QImage(raw, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return wrapped.convertToFormat(QImage.Format.Format_RGB32)  # a copy that owns its pixels


class _Store:
    """The provider's state, shared with its loader thread; holds no reference back to the QObject."""

    def __init__(self, keys: list[str], cache: Any, size: int, image_budget: int, jpeg_budget: int) -> None:
        self.keys, self.cache, self.size = keys, cache, size
        self.image_budget, self.jpeg_budget = image_budget, jpeg_budget
        self.images: OrderedDict[int, QImage] = OrderedDict()
        self.image_bytes = 0
        self.jpeg: OrderedDict[int, bytes] = OrderedDict()
        self.jpeg_bytes = 0
        self.missing: set[int] = set()  # not in the cache and never put: do not ask again
        self.paths: list[str] | None = None  # decode files that are not in the cache (own embeddings)
        self.absent = np.zeros(0, bool)  # per row: the file is not on disk (shown as the placeholder)
        self.placeholder: QImage | None = None
        self.pending: deque[int] = deque()
        self.queued: set[int] = set()
        # re-entrant: the garbage collector may run a dropped provider's finaliser (stop) in any thread,
        # including one that already holds this lock
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.stopped = False

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            self.pending.clear()
            self.queued.clear()
            self.wake.notify_all()

    def enqueue(self, index: int) -> None:
        # caller holds the lock
        if index in self.queued:
            return
        self.queued.add(index)
        self.pending.append(index)
        while len(self.pending) > _MAX_PENDING:
            self.queued.discard(self.pending.popleft())
        self.wake.notify()

    def store_jpeg(self, index: int, data: bytes) -> None:
        old = self.jpeg.pop(index, None)
        self.jpeg_bytes += len(data) - (len(old) if old is not None else 0)
        self.jpeg[index] = data
        while self.jpeg_bytes > self.jpeg_budget and len(self.jpeg) > 1:
            _, dropped = self.jpeg.popitem(last=False)
            self.jpeg_bytes -= len(dropped)

    def store_image(self, index: int, image: QImage) -> None:
        old = self.images.pop(index, None)
        self.image_bytes += image.sizeInBytes() - (old.sizeInBytes() if old is not None else 0)
        self.images[index] = image
        while self.image_bytes > self.image_budget and len(self.images) > 1:
            _, dropped = self.images.popitem(last=False)
            self.image_bytes -= dropped.sizeInBytes()

    def fallback(self, index: int) -> QImage:
        """Not in the cache: the placeholder for a file not on disk, else the file decoded (null if neither)."""
        if self.placeholder is not None and index < len(self.absent) and self.absent[index]:
            return self.placeholder
        if self.paths is None:
            return QImage()
        from imgclust_desktop.core.decode import DecodeError, decode

        try:
            rgb = decode(self.paths[index], max_side=self.size, thumb_sizes=()).image
        except (DecodeError, OSError, IndexError):
            return QImage()
        raw = rgb.tobytes()
        wrapped = QImage(raw, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
        return wrapped.convertToFormat(QImage.Format.Format_RGB32)

    def take_batch(self) -> list[int] | None:
        with self.lock:
            while not self.pending and not self.stopped:
                self.wake.wait()
            if self.stopped:
                return None
            # newest first: what the person looks at now matters more than what they scrolled past
            return [self.pending.pop() for _ in range(min(_BATCH, len(self.pending)))]

    def load(self, batch: list[int]) -> list[int]:
        """Read and decode one batch; returns the indices that now have an image."""
        with self.lock:
            found = {i: self.jpeg[i] for i in batch if i in self.jpeg}
        need = [i for i in batch if i not in found]
        if need and self.cache is not None:
            try:
                by_key = self.cache.get_many([self.keys[i] for i in need], self.size)
            except Exception:  # a locked or damaged cache must not kill the loader
                by_key = {}
            found.update({i: by_key[self.keys[i]] for i in need if self.keys[i] in by_key})
        loaded = []
        for i in batch:
            data = found.get(i)
            if data is not None:
                image = decode_thumbnail(data)
            else:
                image = self.fallback(i)
            with self.lock:
                self.queued.discard(i)
                if image.isNull():
                    self.missing.add(i)
                    continue
                self.store_image(i, image)
            loaded.append(i)
        return loaded


def _run_loader(store: _Store, provider_ref: weakref.ref) -> None:
    while (batch := store.take_batch()) is not None:
        loaded = store.load(batch)
        provider = provider_ref()
        if provider is None:
            return
        try:
            for i in loaded:
                provider.ready.emit(i)
        except RuntimeError:  # the C++ side was deleted
            return
        del provider


class ThumbnailProvider(QObject):
    """Non-blocking QImage thumbnails by row index; `ready(index)` fires when one becomes available.

    Memory is bounded whatever the number of images: decoded images live in an LRU of `image_budget`
    bytes and JPEG bytes from put() in an LRU of `jpeg_budget` bytes; everything else is read again from
    the on-disk cache on demand.
    """

    ready = Signal(int)

    def __init__(
        self,
        keys: Sequence[str],
        cache: Any,
        size: int = 128,
        *,
        image_budget: int = DEFAULT_IMAGE_BUDGET,
        jpeg_budget: int = DEFAULT_JPEG_BUDGET,
        parent: QObject | None = None,
        paths: Sequence[str] | None = None,
        missing: Any = None,
    ) -> None:
        """paths: decode a row's file when the cache has no thumbnail for it; missing: bool per row (or
        row indices) whose file is not on disk, drawn as a grey "missing" tile."""
        super().__init__(parent)
        self.size = size
        # keys: any sequence (worker.FileKeys finds each key when first asked for); not copied
        self._store = _Store(keys, cache, size, image_budget, jpeg_budget)
        self._store.paths = paths
        if missing is not None:
            # a mask, copied (a set of a million missing rows took 0.1 s to build as a session opened)
            absent = np.array(missing)
            if absent.dtype != bool:  # row indices
                absent = np.zeros(len(keys), bool)
                absent[np.asarray(missing, np.int64)] = True
            self._store.absent = absent
            self._store.placeholder = missing_placeholder(size)
        self._thread = threading.Thread(
            target=_run_loader, args=(self._store, weakref.ref(self)), name="thumbnail-loader", daemon=True
        )
        self._thread.start()
        # the thread holds only a weak reference, so a dropped provider is collected and its thread ends
        weakref.finalize(self, self._store.stop)

    @property
    def keys(self) -> list[str]:
        return self._store.keys

    def __len__(self) -> int:
        return len(self._store.keys)

    def get(self, index: int) -> QImage | None:
        """The thumbnail if decoded (marks it recently used); otherwise None and schedule a load."""
        store = self._store
        with store.lock:
            image = store.images.get(index)
            if image is not None:
                store.images.move_to_end(index)
                return image
            if not store.stopped and index not in store.missing and 0 <= index < len(store.keys):
                store.enqueue(index)
        return None

    def peek(self, index: int) -> QImage | None:
        """The thumbnail if already decoded, without scheduling a load or touching the LRU order."""
        with self._store.lock:
            return self._store.images.get(index)

    def put(self, index: int, jpeg: bytes) -> None:
        """Hand over a fresh thumbnail (progressive fill while the pipeline runs); decoded off-thread."""
        store = self._store
        with store.lock:
            if store.stopped or not 0 <= index < len(store.keys):
                return
            store.missing.discard(index)
            store.store_jpeg(index, jpeg)
            store.enqueue(index)

    def stats(self) -> dict[str, int]:
        """Counts and bytes held, for benchmarks and the status bar."""
        store = self._store
        with store.lock:
            return {
                "images": len(store.images),
                "image_bytes": store.image_bytes,
                "jpegs": len(store.jpeg),
                "jpeg_bytes": store.jpeg_bytes,
                "pending": len(store.pending),
            }

    def close(self) -> None:
        """Stop the loader thread (idempotent); get() then only returns what is already decoded."""
        self._store.stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)


def missing_placeholder(size: int) -> QImage:
    """A grey tile with a crossed frame and the word "missing": a file kept in the session but not on disk."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QPainter, QPen

    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(205, 205, 205))
    painter = QPainter(image)
    painter.setPen(QPen(QColor(150, 150, 150), max(1, size // 32)))
    painter.drawLine(0, 0, size - 1, size - 1)
    painter.drawLine(0, size - 1, size - 1, 0)
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.setPen(QColor(90, 90, 90))
    painter.fillRect(QRect(0, size // 2 - size // 8, size, size // 4), QColor(205, 205, 205))
    painter.drawText(QRect(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "missing")
    painter.end()
    return image


def follow_provider(current: Any, model: Any, slot: Any) -> Any:
    """The model's current ThumbnailProvider, with `slot` moved onto its `ready` signal from `current`'s.

    Panels keep the provider they listen to and call this whenever the session may have changed.
    """
    provider = getattr(model, "thumbnails", None)
    if provider is current:
        return current
    if current is not None:
        try:
            current.ready.disconnect(slot)
        except (RuntimeError, TypeError):  # already gone with its session
            pass
    if provider is not None:
        provider.ready.connect(slot)
    return provider


def thumbnail_icon(provider: Any, row: int, px: int) -> QIcon:
    """The row's thumbnail as an icon, or a grey square of px while it loads (the provider emits ready)."""
    image = None if provider is None else provider.get(row)
    if image is None:
        pixmap = QPixmap(px, px)
        pixmap.fill(QColor(228, 228, 228))
        return QIcon(pixmap)
    return QIcon(QPixmap.fromImage(image))
