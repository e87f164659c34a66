"""Features for a file list: cached rows are reused, only misses are decoded, and decoding of the next
images overlaps with inference on the current batch.

Flow: stat every file (a file edited since the scan gets its new identity and is recomputed; a deleted
one is dropped with a reason) -> feature-cache lookup under extractor.cache_key -> cached thumbnails
handed to `on_thumbnail` at once -> ingest.decode_stream over the files that miss a feature row or a
thumbnail -> batches through extractor.preprocess + extractor.embed while the decode pool keeps working
-> new rows written to the cache batch by batch, so a cancelled run keeps what it finished.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cache import FeatureCache, ThumbnailCache, WriteBehind
from .ingest import decode_stream, default_workers
from .progress import CancelFlag, ProgressCallback, RateMeter, check_cancel, never_cancelled, no_progress
from .sources import FileIdentity, Skipped, describe_os_error

THUMB_SIZES = (128, 256)
_THUMB_CHUNK = 256
# A batch should take about this long, so cancel (checked between batches) answers within a second even
# on a slow, busy CPU; batches only shrink below the requested size, never grow past it.
_BATCH_SECONDS = 0.5
_FIRST_BATCH = 4  # a small first batch measures the speed before a long one is committed to


@dataclass
class FeatureResult:
    features: np.ndarray  # float32 [n_ok, dim], rows follow `files` order minus skipped
    files: list[FileIdentity]  # the n_ok files that have a row (identity as of this run)
    skipped: list[Skipped] = field(default_factory=list)
    computed: int = 0  # rows the model computed this run (0 = all from cache)
    seconds: float = 0.0


def default_batch_size(extractor: Any) -> int:
    """8 at 224 px on CPU (more for smaller inputs), larger on a GPU with free memory.

    See models.device.recommended_batch_size.
    """
    try:
        from .models.device import recommended_batch_size
    except ImportError:
        return 32
    return recommended_batch_size(extractor)


def decode_side(extractor: Any) -> int:
    """Long edge to decode to: the network input, or twice it when preprocessing centre-crops."""
    size = int(extractor.input_size)
    return 2 * size if getattr(extractor, "fit", "pad") == "crop" else size


def compute_features(
    files: Sequence[FileIdentity],
    extractor: Any,
    *,
    feature_cache: FeatureCache | None,
    thumb_cache: ThumbnailCache | None,
    batch_size: int | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    on_thumbnail: Callable[[int, bytes], None] | None = None,
) -> FeatureResult:
    """Feature rows for `files` (cache first, decode + embed the rest); bad files skipped with a reason."""
    started = time.perf_counter()
    _configure_threads(extractor)
    batch_size = int(batch_size or default_batch_size(extractor))
    total = len(files)
    meter = RateMeter("features", total, on_progress)
    current, skipped = _refresh(files, cancelled)
    live = [i for i in range(total) if current[i] is not None]
    keys = {i: current[i].key() for i in live}

    rows = np.zeros((total, extractor.dim), np.float32)
    has_row = np.zeros(total, bool)
    cached = feature_cache.get_many([keys[i] for i in live], extractor.cache_key) if feature_cache else {}
    for i in live:
        vector = cached.get(keys[i])
        if vector is not None and vector.shape == (extractor.dim,):
            rows[i], has_row[i] = vector, True

    wants_thumbs = thumb_cache is not None or on_thumbnail is not None
    thumbed: set[str] = set()
    if thumb_cache is not None:
        live_keys = [keys[i] for i in live]
        thumbed = thumb_cache.has_all(live_keys, THUMB_SIZES[0]) & thumb_cache.has_all(
            live_keys, THUMB_SIZES[1]
        )
    to_decode = [i for i in live if not has_row[i] or (wants_thumbs and keys[i] not in thumbed)]
    done = total - len(to_decode)
    meter.update(done, message=f"{done} from cache", force=True)

    if on_thumbnail is not None and thumb_cache is not None:
        _send_cached_thumbnails(
            [i for i in live if keys[i] in thumbed], keys, thumb_cache, on_thumbnail, cancelled
        )

    computed = 0
    # written behind the forward passes: the next batch runs while sqlite stores this one
    cache_writer = WriteBehind(feature_cache.put_many) if feature_cache is not None else None

    def store(indices: list[int], vectors: np.ndarray) -> None:
        nonlocal computed, done
        rows[indices], has_row[indices] = vectors, True
        if cache_writer is not None:
            cache_writer.call([keys[i] for i in indices], extractor.cache_key, vectors)
        computed += len(indices)
        done += len(indices)
        meter.update(done)
        check_cancel(cancelled)

    embedder = _Embedder(extractor, batch_size, workers or default_workers(), store)
    stream = decode_stream(
        [current[i] for i in to_decode],
        max_side=decode_side(extractor),
        thumb_cache=thumb_cache,
        workers=workers,
        prefetch=max(64, 3 * batch_size),  # the next batches are decoded while this one is embedded
        cancelled=cancelled,
    )
    try:
        for position, result in stream:
            index = to_decode[position]
            if isinstance(result, Skipped):
                skipped[index], has_row[index] = result, False
                done += 1
            else:
                if on_thumbnail is not None:
                    on_thumbnail(index, result.thumbnails[THUMB_SIZES[0]])
                if has_row[index]:
                    done += 1  # decoded only for its thumbnails
                else:
                    embedder.add(index, result.image)
            meter.update(done)
        embedder.finish()
    finally:
        stream.close()
        embedder.close()
        if cache_writer is not None:
            cache_writer.close()
    meter.update(
        total, message=f"{computed} computed, {total - computed - len(skipped)} from cache", force=True
    )

    ok = [i for i in range(total) if has_row[i] and i not in skipped]
    return FeatureResult(
        features=rows[ok] if ok else np.zeros((0, extractor.dim), np.float32),
        files=[current[i] for i in ok],
        skipped=[skipped[i] for i in sorted(skipped)],
        computed=computed,
        seconds=time.perf_counter() - started,
    )


def features_from_arrays(
    images: Sequence[np.ndarray],
    extractor: Any,
    *,
    batch_size: int | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> np.ndarray:
    """Features for in-memory RGB uint8 images (see decode.load_array_images), float32 [n, dim]."""
    _configure_threads(extractor)
    batch_size = int(batch_size or default_batch_size(extractor))
    meter = RateMeter("features", len(images), on_progress)
    out = np.zeros((len(images), extractor.dim), np.float32)
    start, step = 0, min(batch_size, _FIRST_BATCH)
    while start < len(images):
        check_cancel(cancelled)
        chunk = list(images[start : start + step])
        batch_started = time.perf_counter()
        out[start : start + len(chunk)] = extractor.embed(extractor.preprocess(chunk))
        per_image = (time.perf_counter() - batch_started) / len(chunk)
        step = max(1, min(batch_size, int(_BATCH_SECONDS / max(per_image, 1e-6))))
        start += len(chunk)
        meter.update(start)
    meter.update(len(images), force=True)
    return out


class _Embedder:
    """Batches images, preprocesses each batch in worker threads while the previous one is embedded."""

    def __init__(self, extractor: Any, batch_size: int, workers: int, store: Callable) -> None:
        self.extractor, self.store, self.workers = extractor, store, max(1, workers)
        self.largest, self.size = batch_size, min(batch_size, _FIRST_BATCH)
        self.indices: list[int] = []
        self.images: list[np.ndarray] = []
        self.in_flight: deque[tuple[list[int], list[np.ndarray], list[Future]]] = deque()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="imgclust-preprocess")

    def add(self, index: int, image: np.ndarray) -> None:
        self.indices.append(index)
        self.images.append(image)
        if len(self.indices) >= self.size:
            self._submit()
            while len(self.in_flight) > 1:  # keep one batch preprocessing while this one runs
                self._embed_oldest()

    def finish(self) -> None:
        if self.indices:
            self._submit()
        while self.in_flight:
            self._embed_oldest()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self) -> None:
        images = self.images
        # preprocessing (resize, normalise) is a few ms per image in Pillow/numpy, which release the
        # GIL: split across threads so a fast GPU is not starved by one CPU thread
        step = max(4, -(-len(images) // self.workers))
        parts = [
            self.pool.submit(self.extractor.preprocess, images[s : s + step])
            for s in range(0, len(images), step)
        ]
        self.in_flight.append((self.indices, images, parts))
        self.indices, self.images = [], []

    def _embed_oldest(self) -> None:
        indices, images, parts = self.in_flight.popleft()
        batch = _concatenate([part.result() for part in parts])
        if batch is None:  # a preprocess output that cannot be joined: do the batch in one call
            batch = self.extractor.preprocess(images)
        started = time.perf_counter()
        vectors = np.asarray(self.extractor.embed(batch), np.float32)
        per_image = (time.perf_counter() - started) / len(indices)
        self.size = max(1, min(self.largest, int(_BATCH_SECONDS / max(per_image, 1e-6))))
        if vectors.shape != (len(indices), self.extractor.dim):
            raise RuntimeError(f"{self.extractor.id} returned {vectors.shape} for {len(indices)} images")
        self.store(indices, vectors)


def _concatenate(parts: list) -> Any:
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    if type(parts[0]).__module__.startswith("torch"):
        import torch

        return torch.cat(parts)
    return None


def _refresh(files: Sequence[FileIdentity], cancelled: CancelFlag) -> tuple[list, dict[int, Skipped]]:
    """Identity of every file now; missing ones become Skipped."""
    current: list[FileIdentity | None] = []
    skipped: dict[int, Skipped] = {}
    for i, identity in enumerate(files):
        if i % 1024 == 0:
            check_cancel(cancelled)
        try:
            st = os.stat(identity.path)
        except FileNotFoundError:
            skipped[i] = Skipped(
                identity.path, "the file no longer exists (deleted or moved after the folder was scanned)"
            )
            current.append(None)
            continue
        except OSError as error:
            skipped[i] = Skipped(identity.path, describe_os_error(error))
            current.append(None)
            continue
        if (st.st_size, st.st_mtime_ns) == (identity.size, identity.mtime_ns):
            current.append(identity)
        else:  # edited since the scan: its old cached row no longer describes it
            current.append(FileIdentity(identity.path, st.st_size, st.st_mtime_ns))
    return current, skipped


def _send_cached_thumbnails(indices, keys, thumb_cache, on_thumbnail, cancelled) -> None:
    for start in range(0, len(indices), _THUMB_CHUNK):
        check_cancel(cancelled)
        chunk = indices[start : start + _THUMB_CHUNK]
        found = thumb_cache.get_many([keys[i] for i in chunk], THUMB_SIZES[0])
        for i in chunk:
            jpeg = found.get(keys[i])
            if jpeg is not None:
                on_thumbnail(i, jpeg)


def _configure_threads(extractor: Any) -> None:
    if getattr(extractor, "device", "cpu") != "cpu":
        return
    try:
        from .models.device import configure_cpu_threads
    except ImportError:
        return
    configure_cpu_threads()  # once per process: torch's default ignores affinity masks and containers
