"""Snapshots of a session folder taken before it is rewritten in place, and undo from the newest one.

SESSION/history/<time>/ holds a copy of the session's own files (every file at the top of the folder,
and montages/; hidden temporary files aside) and snapshot.json listing them. Other sub-folders (faces/
crops) are neither copied nor touched. features.npy, the one large file, is hard-linked rather than
copied where the file system allows: every writer of the folder replaces files through a temporary name
and os.replace, so the old inode, and with it the snapshot, is never written to.

`restore_last` puts the folder back byte for byte: the snapshot's files replace the current ones (each
through a temporary copy and os.replace), files the snapshot did not have are removed, and the snapshot
is dropped, so a second undo goes one step further back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

HISTORY = "history"
MONTAGES = "montages"
MANIFEST = "snapshot.json"
KEEP = 5  # snapshots kept per session folder; older ones are deleted
_LINKED = {"features.npy"}


class HistoryError(Exception):
    """No snapshot to restore, or a damaged one; str(e) says which in words."""


def session_files(folder: Path) -> list[str]:
    """Relative paths (with /) of the folder's files that a snapshot covers, sorted."""
    folder = Path(folder)
    candidates = list(folder.glob("*")) + list((folder / MONTAGES).rglob("*"))
    found = [
        path.relative_to(folder).as_posix()
        for path in candidates
        if path.is_file() and not path.name.startswith(".")
    ]
    return sorted(found)


def snapshot(folder: Path, *, reason: str = "", keep: int = KEEP) -> Path:
    """Copy the session folder's files into history/<time>/ and return that folder."""
    folder = Path(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    target = folder / HISTORY / stamp
    partial = folder / HISTORY / f".{stamp}.{uuid.uuid4().hex[:8]}.partial"
    partial.mkdir(parents=True)
    files = session_files(folder)
    try:
        for relative in files:
            source, copy = folder / relative, partial / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            if relative in _LINKED:
                try:
                    os.link(source, copy)
                    continue
                except OSError:  # another file system, or links not allowed: a plain copy
                    pass
            shutil.copy2(source, copy)
        manifest = {"files": files, "reason": reason, "time": round(time.time(), 3)}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(partial, target)  # the snapshot appears whole or not at all
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _prune(folder / HISTORY, keep)
    return target


def snapshots(folder: Path) -> list[Path]:
    """Complete snapshots of the folder, oldest first."""
    root = Path(folder) / HISTORY
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())


def restore_last(folder: Path) -> Path:
    """Put the folder back as the newest snapshot has it (byte for byte) and drop that snapshot."""
    folder = Path(folder)
    found = snapshots(folder)
    if not found:
        raise HistoryError(f"{folder} has no earlier state to go back to (no {HISTORY}/ snapshot)")
    last = found[-1]
    try:
        manifest = json.loads((last / MANIFEST).read_text(encoding="utf-8"))
        files = [str(f) for f in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HistoryError(f"the snapshot {last.name} is damaged: {exc}") from None
    absent = [f for f in files if not (last / f).is_file()]
    if absent:
        raise HistoryError(f"the snapshot {last.name} is incomplete (no {absent[0]})")
    for relative in files:
        source, target = last / relative, folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    wanted = set(files)
    for relative in session_files(folder):
        if relative not in wanted:
            (folder / relative).unlink()
    montages = folder / MONTAGES
    if montages.is_dir() and not any(montages.iterdir()):
        montages.rmdir()  # the snapshot had none
    shutil.rmtree(last)
    return last


def _prune(root: Path, keep: int) -> None:
    complete = sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())
    for old in complete[: max(0, len(complete) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
