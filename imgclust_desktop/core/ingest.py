"""Parallel decode stream: files in, (index, Decoded | Skipped) out in order, decoding ahead of the consumer.

Decoding runs in a thread pool. Pillow releases the GIL inside its codecs and resizers, so threads scale
like processes here without pickling pixels between processes or paying process start-up (measured in
bench/ingest.py). While the consumer (feature inference) works on one batch, the pool keeps decoding up
to `prefetch` files ahead; thumbnails made during decoding are written to the thumbnail cache as they
arrive, by a writer thread of their own (sqlite releases the GIL while it writes), so the consumer does
not wait on the disk.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from .cache import ThumbnailCache, WriteBehind
from .decode import Decoded, DecodeError, decode
from .progress import CancelFlag, check_cancel, never_cancelled
from .sources import FileIdentity, Skipped

_POLL_SECONDS = 0.1  # how often a waiting consumer looks at the cancel flag
_THUMB_FLUSH = 256  # thumbnails per sqlite transaction
_WRITES_AHEAD = 8  # transactions queued for the writer before the stream waits for it (bounded memory)


def default_workers() -> int:
    """Decode threads: one per usable core, at most 8 (beyond that the disk or the model is the limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def decode_file(identity: FileIdentity, max_side: int) -> Decoded | Skipped:
    """Decode one scanned file, or say why not; never raises for a bad file."""
    try:
        st = os.stat(identity.path)
    except FileNotFoundError:
        return Skipped(
            identity.path, "the file no longer exists (deleted or moved after the folder was scanned)"
        )
    except OSError:
        st = None  # let decode() produce the precise reason
    if st is not None and (st.st_size, st.st_mtime_ns) != (identity.size, identity.mtime_ns):
        return Skipped(identity.path, "the file changed while it was being read; scan again to include it")
    try:
        return decode(identity.path, max_side=max_side)
    except DecodeError as error:
        return Skipped(identity.path, str(error))
    except Exception as error:  # a codec bug on one odd file must not stop the run
        return Skipped(identity.path, f"could not be decoded ({type(error).__name__}: {error})")


def decode_stream(
    files: Sequence[FileIdentity],
    *,
    max_side: int,
    thumb_cache: ThumbnailCache | None,
    workers: int | None = None,
    prefetch: int = 64,
    cancelled: CancelFlag = never_cancelled,
) -> Iterator[tuple[int, Decoded | Skipped]]:
    """Yield (index into files, result) in index order while a thread pool decodes ahead."""
    if not files:
        return
    pool = ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="imgclust-decode")
    writer = WriteBehind(thumb_cache.put_many, ahead=_WRITES_AHEAD) if thumb_cache is not None else None
    pending: deque[tuple[int, Future]] = deque()
    unsaved: list[tuple[str, dict[int, bytes]]] = []
    next_index = 0
    ahead = max(1, prefetch)
    try:
        while True:
            while next_index < len(files) and len(pending) < ahead:
                pending.append((next_index, pool.submit(decode_file, files[next_index], max_side)))
                next_index += 1
            if not pending:
                break
            index, future = pending.popleft()
            result = _wait(future, cancelled)
            if writer is not None and isinstance(result, Decoded):
                unsaved.append((files[index].key(), result.thumbnails))
                if len(unsaved) >= _THUMB_FLUSH:
                    writer.call(unsaved)
                    unsaved = []
            check_cancel(cancelled)
            yield index, result
    finally:
        # also runs when the consumer stops early or cancels: keep what was decoded, drop the rest
        pool.shutdown(wait=False, cancel_futures=True)
        if writer is not None:
            if unsaved:
                writer.call(unsaved)
            writer.close()  # every thumbnail handed over is in the cache when the stream ends


def _wait(future: Future, cancelled: CancelFlag) -> Decoded | Skipped:
    while True:
        check_cancel(cancelled)
        try:
            return future.result(timeout=_POLL_SECONDS)
        except FutureTimeout:
            continue
