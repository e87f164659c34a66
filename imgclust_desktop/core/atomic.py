"""Atomic file writes: a crash or a full disk mid-write leaves the old file, never half a new one.

Shared by the session files, the report and montages, and export manifests; it imports nothing of
theirs, so none of them has to import another just to write a file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(target: Path, write: Callable[[IO[Any]], object], *, binary: bool = False) -> None:
    """Write through a temporary file in the same folder, fsync, then os.replace onto the target."""
    # A unique name opened with "x" (not mkstemp): the file gets the usual permissions, not 0600.
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    kwargs = {} if binary else {"encoding": "utf-8", "newline": ""}
    handle = open(tmp, "xb" if binary else "x", **kwargs)  # noqa: SIM115 (closed below, before replace)
    try:
        with handle as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write bytes atomically (temp file + os.replace); used for montages, the report and manifests."""
    atomic_write(Path(target), lambda f: f.write(data), binary=True)
