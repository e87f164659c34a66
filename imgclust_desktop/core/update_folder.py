"""The session folder side of an update: snapshot-then-write, undo, file identities, hierarchy.csv.

`save_update` snapshots the folder (history.py) before writing, so `undo_update` restores it byte for
byte, and puts it back on its own if the write fails half way. SESSION/files.csv keeps the identity
(size, mtime) of every file so an edited image is noticed by the next update.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

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
        _extend_hierarchy(folder, result)
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


def _extend_hierarchy(folder: Path, result: Any) -> None:
    """Keep hierarchy.csv (the cluster tree's levels, when the session has one) one row per image.

    A joined image takes the level labels of its nearest member of the cluster it joined (the same label
    at every level its cluster has); an image in a new cluster gets -1 at every level.
    TODO(lead): once Session carries the tree and session.save writes hierarchy.csv itself, move this
    into the tree code (new clusters could get their own leaf at the finest level).
    """
    path = Path(folder) / "hierarchy.csv"
    session = result.session
    if not path.exists():
        return
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2 or len(rows) - 1 >= len(session.paths):
        return
    header, body = rows[0], rows[1:]
    by_row = {i: body[i] for i in range(len(body))}
    n_old = len(body)
    for row in range(n_old, len(session.paths)):
        label = int(session.labels[row])
        donor = None
        if row in result.joined:
            mates = np.flatnonzero(session.labels[:n_old] == label)
            if len(mates):
                distances = np.linalg.norm(session.coords[mates] - session.coords[row], axis=1)
                donor = int(mates[np.argmin(distances)])
        if donor is not None:
            values = [session.paths[row]] + by_row[donor][1:]
        else:
            values = [session.paths[row]] + ["-1"] * (len(header) - 1)
        body.append(values)

    def write(f) -> None:
        csv.writer(f).writerows([header, *body])

    from .session import _atomic_write

    _atomic_write(path, write)
