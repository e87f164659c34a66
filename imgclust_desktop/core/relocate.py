"""Moved collections: when a session's images are no longer where they were (a drive letter or mount
point changed, a folder was renamed), find the new root and swap the path prefix, after checking that
the files found there are the same files.

`find_relocation(session, new_folder)` tries every ancestor of the images' common folder as the old
prefix and `new_folder` as its replacement, keeps the swap under which most images exist, and verifies
a sample of them: same size as recorded in SESSION/files.csv (when the session has one) and the same
content, by computing the features of a few of them with the session's own model and comparing them
with the stored rows (cosine similarity >= 0.99; an edited or different file does not get there).
`relocate(session, relocation)` returns a copy with the paths, inputs and missing flags swapped.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from .progress import CancelFlag, ProgressCallback, never_cancelled, no_progress
from .session import Session

SAMPLE = 200  # paths tested per candidate prefix
CONTENT_SAMPLE = 6  # files whose features are recomputed to check their content
SAME_CONTENT = 0.99  # cosine similarity of recomputed and stored features
MOSTLY_MISSING = 0.5  # share of missing images above which opening a session offers to relocate


@dataclass
class Relocation:
    old_prefix: str
    new_prefix: str
    found: float  # share of sampled images that exist under the new prefix
    size_checked: int = 0  # sampled files whose size matched the recorded one
    size_mismatch: list[str] = field(default_factory=list)
    content_checked: int = 0  # files whose recomputed features matched the stored ones
    content_mismatch: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """Most images found, no size mismatch, and every content check passed."""
        return self.found >= MOSTLY_MISSING and not self.size_mismatch and not self.content_mismatch

    def swap(self, path: str) -> str:
        """The path under the new prefix (unchanged when it is not under the old one)."""
        if path == self.old_prefix or path.startswith(self.old_prefix.rstrip(os.sep) + os.sep):
            return self.new_prefix + path[len(self.old_prefix) :]
        return path


def missing_share(session: Session, sample: int = SAMPLE) -> float:
    """Share of a spread sample of the session's images that are not on disk now."""
    if not session.paths:
        return 0.0
    picks = sorted(
        set(np.linspace(0, len(session.paths) - 1, min(sample, len(session.paths))).astype(int).tolist())
    )
    return float(np.mean([not os.path.exists(session.paths[i]) for i in picks]))


def needs_relocation(session: Session) -> bool:
    """True when most of the session's images are not where it says they are."""
    return missing_share(session) > MOSTLY_MISSING


def find_relocation(
    session: Session,
    new_folder: str,
    *,
    check_content: bool = True,
    device: str = "auto",
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> Relocation | None:
    """The prefix swap that makes most images exist under new_folder, checked; None when none does."""
    from .update import read_identities

    new_folder = os.path.abspath(os.path.expanduser(new_folder)).rstrip(os.sep) or os.sep
    paths = session.paths
    if not paths:
        return None
    picks = np.unique(np.linspace(0, len(paths) - 1, min(SAMPLE, len(paths))).astype(int)).tolist()
    common = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    best: Relocation | None = None
    for old in [str(p) for p in (PurePath(common), *PurePath(common).parents)]:
        candidate = Relocation(old, new_folder, 0.0)
        found = np.mean([os.path.isfile(candidate.swap(paths[i])) for i in picks])
        if best is None or found > best.found:
            best = dataclasses.replace(candidate, found=float(found))
    if best is None or best.found < MOSTLY_MISSING:
        return None

    known = read_identities(session.path) if session.path is not None else {}
    for i in picks:
        recorded = known.get(paths[i])
        moved = best.swap(paths[i])
        if recorded is None or not os.path.isfile(moved):
            continue
        if os.path.getsize(moved) == recorded[0]:
            best.size_checked += 1
        else:
            best.size_mismatch.append(moved)
    if check_content and not best.size_mismatch:
        _check_content(session, best, picks, device, on_progress, cancelled)
    return best


def _check_content(session, relocation, picks, device, on_progress, cancelled) -> None:
    from .pipeline import PipelineError, features_for_images

    rows = [i for i in picks if os.path.isfile(relocation.swap(session.paths[i]))]
    rows = [rows[int(j)] for j in np.linspace(0, len(rows) - 1, min(CONTENT_SAMPLE, len(rows))).round()]
    rows = sorted(set(rows))
    try:
        vectors = features_for_images(
            session, [relocation.swap(session.paths[i]) for i in rows], device=device,
            on_progress=on_progress, cancelled=cancelled,
        )  # fmt: skip
    except (PipelineError, ValueError) as exc:
        relocation.content_mismatch.append(f"cannot check content: {exc}")
        return
    stored = session.features[rows]
    similarity = np.einsum("ij,ij->i", _unit(vectors), _unit(stored))
    for row, value in zip(rows, similarity.tolist(), strict=True):
        if value >= SAME_CONTENT:
            relocation.content_checked += 1
        else:
            relocation.content_mismatch.append(relocation.swap(session.paths[row]))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def relocate(session: Session, relocation: Relocation) -> Session:
    """A copy of the session with every path and input under the new prefix, missing flags re-checked."""
    paths = [relocation.swap(p) for p in session.paths]
    missing = np.array([not os.path.exists(p) for p in paths], bool)
    moved = dataclasses.replace(
        session,
        paths=paths,
        inputs=[relocation.swap(p) for p in session.inputs],
        missing=missing,
        skipped=[dataclasses.replace(s, path=relocation.swap(s.path)) for s in session.skipped],
        params=dict(session.params),
        edits=list(session.edits),
        labels=session.labels.copy(),
        excluded=session.excluded.copy(),
        clusters=dict(session.clusters),
    )
    moved.edits.append(
        {
            "op": "relocate",
            "time": round(time.time(), 3),
            "from": relocation.old_prefix,
            "to": relocation.new_prefix,
            "found": round(relocation.found, 4),
            "still_missing": int(missing.sum()),
        }
    )
    return moved
