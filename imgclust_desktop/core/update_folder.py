"""The session folder side of an update: snapshot-then-write, undo, file identities.

`save_update` snapshots the folder (history.py) before writing, so `undo_update` restores it byte for
byte, and puts it back on its own if the write fails half way. SESSION/files.csv keeps the identity
(size, mtime) of every file so an edited image is noticed by the next update.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from . import history

IDENTITIES = "files.csv"


def save_update(result: Any, folder: Path | None = None, *, report: bool = True) -> Path:
    """Write an updated session into its folder in place, after a snapshot that `undo_update` restores.

    If writing fails half way, the folder is put back as it was before the error is raised.
    """
    from . import session as session_io

    folder = Path(folder or result.session.path)
    snap = history.snapshot(folder, reason="update") if (folder / "session.json").exists() else None
    try:
        session_io.save(result.session, folder, report=report)
        write_identities(folder, result.identities)
    except BaseException:
        if snap is not None:
            history.restore_last(folder)
        raise
    return folder


def undo_update(folder: Path) -> Path:
    """Put the session folder back as it was before the last update (byte for byte); returns the snapshot."""
    return history.restore_last(Path(folder))


def read_identities(folder: Path | None) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) as recorded in SESSION/files.csv ({} when there is none)."""
    if folder is None:
        return {}
    try:
        with open(Path(folder) / IDENTITIES, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader, None)
            return {row[0]: (int(row[1]), int(row[2])) for row in reader if len(row) == 3}
    except (OSError, ValueError, csv.Error):
        return {}


def write_identities(folder: Path, identities: dict[str, tuple[int, int]]) -> None:
    """Write SESSION/files.csv (path,size,mtime_ns), atomically."""
    from .session import _atomic_write

    def write(f) -> None:
        writer = csv.writer(f)
        writer.writerow(["path", "size", "mtime_ns"])
        for path, (size, mtime) in sorted(identities.items()):
            writer.writerow([path, size, mtime])

    _atomic_write(Path(folder) / IDENTITIES, write)


def features_time(folder: Path | None) -> int | None:
    if folder is None:
        return None
    try:
        return os.stat(Path(folder) / "features.npy").st_mtime_ns
    except OSError:
        return None
