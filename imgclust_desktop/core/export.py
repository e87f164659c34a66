"""Export chosen clusters/images into DEST/<cluster name>/ by copy, move, hard link or symlink.

Safety rules: nothing is ever overwritten (collisions get "name (2).jpg", also against files already in
DEST); names are sanitised so a cluster called "../../etc" or "CON" stays inside DEST; a move copies to a
temporary name next to the destination, fsyncs, checks the size, renames into place, records the file in
the manifest and only then removes the source, so a killed export leaves each file at its source or its
destination. The manifest (CSV appended per file, JSON at the end) lets undo_export put moved files back.
"""

from __future__ import annotations

import csv
import errno
import filecmp
import json
import os
import shutil
import time
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .progress import CancelFlag, ProgressCallback, RateMeter, never_cancelled, no_progress

if TYPE_CHECKING:
    from .session import Session

MODES = ("copy", "move", "link", "symlink")
PARTIAL_PREFIX = ".imgclust-partial-"
MANIFEST_COLUMNS = ["mode", "status", "source", "destination", "cluster", "size", "mtime_ns", "reason"]
MAX_NAME_BYTES = 150  # well under the 255-byte limit of common file systems, room for " (123)"
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
_FORBIDDEN = set('<>:"/\\|?*')
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


@dataclass
class ExportPlan:
    """What an export will do, shown before anything happens: (source, destination) pairs."""

    dest: str
    mode: str
    items: list[tuple[str, str]]
    clusters: list[int] = field(default_factory=list)  # cluster id per item
    folder_names: dict[int, str] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, str]:
        return self.items[i]


@dataclass
class ManifestEntry:
    source: str
    destination: str
    cluster: str
    status: str  # "done" or "failed"
    reason: str = ""
    size: int = 0
    mtime_ns: int = 0


@dataclass
class Manifest:
    csv_path: Path
    json_path: Path
    mode: str
    dest: str
    entries: list[ManifestEntry]
    cancelled: bool = False

    @property
    def done(self) -> int:
        return sum(e.status == "done" for e in self.entries)

    @property
    def failed(self) -> list[ManifestEntry]:
        return [e for e in self.entries if e.status != "done"]


@dataclass
class UndoResult:
    restored: int
    skipped: list[tuple[str, str]]  # (path, reason)


def safe_name(name: str, fallback: str, *, keep_extension: bool = False) -> str:
    """A single path component safe on every OS: no separators, traversal, control chars, reserved names."""
    text = unicodedata.normalize("NFC", str(name))
    text = "".join(
        "_" if c in _FORBIDDEN or c in _BIDI_CONTROLS or unicodedata.category(c) == "Cc" else c for c in text
    )
    # Leading dots would hide the file or mean "..", trailing dots and spaces are invalid on Windows.
    text = text.strip(" .")
    if not text:
        text = fallback
    if text.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        text = "_" + text
    return _truncate(text, keep_extension)


def _truncate(text: str, keep_extension: bool) -> str:
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    stem, ext = os.path.splitext(text) if keep_extension else (text, "")
    if len(ext.encode("utf-8")) > 16:
        stem, ext = text, ""
    budget = MAX_NAME_BYTES - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return (stem or "file") + ext


def _numbered(name: str, number: int) -> str:
    stem, ext = os.path.splitext(name)
    return f"{stem} ({number}){ext}"


def plan_export(
    session: Session,
    dest: str | os.PathLike,
    clusters: Sequence[int] | None = None,
    indices: Sequence[int] | None = None,
    mode: str = "copy",
    name_pattern: str = "{name}",
    *,
    include_excluded: bool = False,
) -> ExportPlan:
    """Decide every (source, destination) pair without touching the disk (beyond looking at DEST).

    clusters=None and indices=None: every non-empty cluster not marked excluded (noise only when -1 is
    listed). name_pattern fields: {name} {stem} {ext} {cluster} {cluster_name} {index} {n}.
    """
    if mode not in MODES:
        raise ValueError(f"unknown export mode {mode!r}; choose one of {', '.join(MODES)}")
    dest_root = os.path.abspath(os.fspath(dest))
    labels = np.asarray(session.labels)
    chosen = np.ones(len(labels), bool)
    if clusters is not None:
        chosen &= np.isin(labels, [int(c) for c in clusters])
    if indices is not None:
        mask = np.zeros(len(labels), bool)
        mask[np.asarray(indices, dtype=np.int64)] = True
        chosen &= mask
    if clusters is None and indices is None:
        hidden = [cid for cid, info in session.clusters.items() if info.excluded]
        chosen &= (labels >= 0) & ~np.isin(labels, hidden)
    if not include_excluded:
        chosen &= ~np.asarray(session.excluded, bool)
    rows = np.flatnonzero(chosen)
    folder_names = _folder_names(session, sorted({int(labels[r]) for r in rows}))
    taken: dict[str, set[str]] = {}
    items, item_clusters = [], []
    counters: dict[int, int] = {}
    for row in rows.tolist():
        cid = int(labels[row])
        counters[cid] = counters.get(cid, 0) + 1
        src = session.paths[row]
        base = os.path.basename(src)
        stem, ext = os.path.splitext(base)
        try:
            wanted = name_pattern.format(
                name=base,
                stem=stem,
                ext=ext,
                cluster=cid,
                cluster_name=session.name_of(cid),
                index=row,
                n=counters[cid],
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad name pattern {name_pattern!r}: {exc}") from None
        folder = os.path.join(dest_root, folder_names[cid])
        name = _free_name(folder, safe_name(wanted, f"image{row}", keep_extension=True), taken)
        dst = os.path.join(folder, name)
        # Defence in depth: sanitising must already keep us inside DEST; never trust it blindly.
        if os.path.commonpath([dest_root, os.path.abspath(dst)]) != dest_root:
            raise ValueError(f"refusing a destination outside {dest_root}: {dst}")
        items.append((src, dst))
        item_clusters.append(cid)
    return ExportPlan(dest_root, mode, items, item_clusters, folder_names)


def _folder_names(session: Session, cluster_ids: Sequence[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    seen: set[str] = set()
    for cid in cluster_ids:
        fallback = "noise" if cid < 0 else f"cluster_{cid}"
        name = safe_name(session.name_of(cid) if cid >= 0 else "noise", fallback)
        candidate, number = name, 2
        while candidate.casefold() in seen:  # "Cats" and "cats" are one folder on macOS/Windows
            candidate, number = f"{name} ({number})", number + 1
        seen.add(candidate.casefold())
        names[cid] = candidate
    return names


def _free_name(folder: str, name: str, taken: dict[str, set[str]]) -> str:
    """First of name, "name (2)", ... that neither the plan nor the disk has in this folder."""
    used = taken.setdefault(os.path.normcase(folder), set())
    candidate, number = name, 2
    while candidate.casefold() in used or os.path.lexists(os.path.join(folder, candidate)):
        candidate, number = _numbered(name, number), number + 1
    used.add(candidate.casefold())
    return candidate


def run_export(
    plan: ExportPlan,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    manifest_path: str | os.PathLike | None = None,
) -> Manifest:
    """Carry out a plan; returns the manifest (cancelled=True when stopped early; finished files stay)."""
    os.makedirs(plan.dest, exist_ok=True)
    if manifest_path is None:
        manifest_path = _free_manifest_path(plan.dest)
    csv_path = Path(manifest_path).with_suffix(".csv")
    json_path = csv_path.with_suffix(".json")
    manifest = Manifest(csv_path, json_path, plan.mode, plan.dest, [])
    meter = RateMeter("export", len(plan.items), on_progress)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with open(csv_path, "x", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        handle.flush()
        last_sync = time.monotonic()
        clusters = plan.clusters or [-1] * len(plan.items)
        for done, ((src, dst), cid) in enumerate(zip(plan.items, clusters, strict=True)):
            if cancelled():
                manifest.cancelled = True
                break
            cluster_name = plan.folder_names.get(cid, "")

            def record(entry: ManifestEntry) -> None:
                manifest.entries.append(entry)
                writer.writerow(
                    [
                        plan.mode,
                        entry.status,
                        entry.source,
                        entry.destination,
                        entry.cluster,
                        entry.size,
                        entry.mtime_ns,
                        entry.reason,
                    ]
                )
                # Flushed per file so a killed run's manifest still lists every finished file for undo.
                handle.flush()

            try:
                final = _export_one(src, dst, plan.mode, record, cluster_name)
            except OSError as exc:
                record(ManifestEntry(src, dst, cluster_name, "failed", _reason(exc, plan.mode)))
            else:
                if final is None:
                    record(ManifestEntry(src, dst, cluster_name, "failed", "the source file is gone"))
            if time.monotonic() - last_sync > 1.0:
                os.fsync(handle.fileno())
                last_sync = time.monotonic()
            meter.update(done + 1)
        os.fsync(handle.fileno())
    meter.update(manifest.done + len(manifest.failed), force=True)
    _write_json_manifest(manifest, started)
    return manifest


def _export_one(src: str, dst: str, mode: str, record, cluster_name: str) -> str | None:
    """Export one file; calls record() once it is in place (before a move removes the source)."""
    if not os.path.isfile(src):
        return None
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    st = os.stat(src)
    if mode == "symlink":
        final = _no_clobber(dst, lambda target: os.symlink(os.path.abspath(src), target))
    elif mode == "link":
        final = _no_clobber(dst, lambda target: os.link(src, target))
    elif mode == "move":
        try:
            final = _no_clobber(dst, lambda target: os.link(src, target))  # same drive: instant and atomic
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            final = _copy_verified(src, dst, st.st_size)
    else:
        final = _copy_verified(src, dst, st.st_size)
    record(ManifestEntry(src, final, cluster_name, "done", "", st.st_size, st.st_mtime_ns))
    if mode == "move":
        try:
            os.unlink(src)
        except OSError as exc:
            reason = f"copied, but the original could not be removed ({exc.strerror or exc})"
            raise OSError(exc.errno, reason) from None
    return final


def _no_clobber(dst: str, create) -> str:
    """Call create(target) on dst, then "dst (2)", ...; create must fail with FileExistsError if taken."""
    folder, name = os.path.split(dst)
    candidate, number = dst, 2
    while True:
        try:
            create(candidate)
            return candidate
        except FileExistsError:
            candidate, number = os.path.join(folder, _numbered(name, number)), number + 1


def _copy_verified(src: str, dst: str, size: int) -> str:
    """Copy to a temporary name in the destination folder, fsync, check the size, then place it."""
    folder = os.path.dirname(dst)
    tmp = os.path.join(folder, f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        shutil.copy2(src, tmp)  # copy2 keeps the file times
        with open(tmp, "rb+") as f:  # a writable handle: Windows cannot flush a read-only one
            os.fsync(f.fileno())
        if os.path.getsize(tmp) != size:
            raise OSError(errno.EIO, f"copy of {src} has the wrong size")
        return _place(tmp, dst)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _place(tmp: str, dst: str) -> str:
    """Rename tmp to dst (or the next free "dst (n)") without ever replacing an existing file."""

    def link_then_drop(target: str) -> None:
        try:
            os.link(tmp, target)  # fails with FileExistsError instead of overwriting, unlike rename
        except FileExistsError:
            raise
        except OSError:
            # File systems without hard links (FAT, some network shares): check, then rename.
            if os.path.lexists(target):
                raise FileExistsError(target) from None
            os.rename(tmp, target)
            return
        os.unlink(tmp)

    return _no_clobber(dst, link_then_drop)


def _reason(exc: OSError, mode: str) -> str:
    if mode == "link" and exc.errno == errno.EXDEV:
        return "hard links need the destination on the same drive as the source"
    if mode == "symlink" and exc.errno in (errno.EPERM, errno.EACCES):
        return "this system does not allow creating symbolic links here"
    return exc.strerror or str(exc)


def _free_manifest_path(dest: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(dest) / f"imgclust-export-{stamp}"
    candidate, number = base, 2
    while candidate.with_suffix(".csv").exists() or candidate.with_suffix(".json").exists():
        candidate, number = Path(f"{base}-{number}"), number + 1
    return candidate.with_suffix(".csv")


def _write_json_manifest(manifest: Manifest, started: str) -> None:
    from .atomic import atomic_write_bytes

    document = {
        "format": "imgclust-export-manifest",
        "version": 1,
        "mode": manifest.mode,
        "dest": manifest.dest,
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cancelled": manifest.cancelled,
        "done": manifest.done,
        "failed": len(manifest.failed),
        "entries": [e.__dict__ for e in manifest.entries],
    }
    atomic_write_bytes(manifest.json_path, json.dumps(document, indent=1).encode("utf-8"))


def read_manifest(path: str | os.PathLike) -> tuple[str, list[ManifestEntry]]:
    """(mode, entries) from a manifest CSV (preferred: complete even after a kill) or JSON."""
    path = Path(path)
    if path.suffix.lower() == ".json" and path.with_suffix(".csv").exists():
        path = path.with_suffix(".csv")
    try:
        if path.suffix.lower() == ".json":
            document = json.loads(path.read_text(encoding="utf-8"))
            return document["mode"], [ManifestEntry(**e) for e in document["entries"]]
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read export manifest {path}: {exc}") from None
    if not rows or rows[0] != MANIFEST_COLUMNS:
        raise ValueError(f"{path} is not an imgclust export manifest")
    mode = "copy"
    entries = []
    for row in rows[1:]:
        if len(row) != len(MANIFEST_COLUMNS):
            continue  # a line cut short by a kill mid-write
        mode = row[0]
        entries.append(ManifestEntry(row[2], row[3], row[4], row[1], row[7], int(row[5]), int(row[6])))
    return mode, entries


def undo_export(
    manifest_path: str | os.PathLike,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> UndoResult:
    """Reverse an export: moved files go back, copies/links made by it are removed; never overwrites."""
    mode, entries = read_manifest(manifest_path)
    done = [e for e in entries if e.status == "done"]
    result = UndoResult(0, [])
    meter = RateMeter("undo export", len(done), on_progress)
    folders: set[str] = set()
    for count, entry in enumerate(reversed(done)):
        if cancelled():
            break
        folders.add(os.path.dirname(entry.destination))
        try:
            reason = _undo_one(entry, mode)
        except OSError as exc:
            reason = exc.strerror or str(exc)
        if reason:
            result.skipped.append((entry.destination, reason))
        else:
            result.restored += 1
        meter.update(count + 1)
    for folder in folders:
        _tidy(folder)
    return result


def _undo_one(entry: ManifestEntry, mode: str) -> str:
    """Undo one file; returns "" on success or why it was left alone."""
    src, dst = entry.source, entry.destination
    if not os.path.lexists(dst):
        return "no longer at the export destination"
    if mode == "symlink":
        if not os.path.islink(dst) or os.readlink(dst) != os.path.abspath(src):
            return "changed since the export (not the link it made)"
        os.unlink(dst)
        return ""
    if mode == "link":
        if not os.path.exists(src) or not os.path.samefile(src, dst):
            return "the source is gone or differs: this link may be the only copy left"
        os.unlink(dst)
        return ""
    if mode == "copy":
        st = os.stat(dst)
        if st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
            return "changed since the export; not deleted"
        os.unlink(dst)
        return ""
    # move
    if os.path.lexists(src):
        # A run killed between placing the copy and removing the source leaves two identical files.
        if os.path.isfile(src) and filecmp.cmp(src, dst, shallow=False):
            os.unlink(dst)
            return ""
        return "a different file now exists at the original location; not overwritten"
    os.makedirs(os.path.dirname(src), exist_ok=True)
    try:
        os.link(dst, src)  # same drive: atomic, and fails rather than overwriting
    except FileExistsError:
        return "a file now exists at the original location; not overwritten"
    except OSError:
        placed = _copy_verified(dst, src, os.path.getsize(dst))
        if placed != src:  # something appeared at the source while copying: keep both, report it
            os.unlink(placed)
            return "a file now exists at the original location; not overwritten"
    os.unlink(dst)
    return ""


def _tidy(folder: str) -> None:
    """Remove our partial-copy leftovers and the folder itself when the undo left it empty."""
    try:
        for name in os.listdir(folder):
            if name.startswith(PARTIAL_PREFIX):
                os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    except OSError:
        pass
