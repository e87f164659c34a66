"""Add new images to a curated session without moving the map or touching the curation.

rescan -> features (new and changed files only, with the session's own model settings and the cache)
-> placement.place (positions and joins for the new rows) -> a new Session: every existing row keeps its
path, position, cluster, exclusion and the clusters their names; new rows are appended. Files that
vanished are flagged `missing` (kept and listed, never dropped); a file that came back is reattached.

Writing it into the folder (snapshot first, undo, SESSION/files.csv with every file's size and mtime so
an edited image is noticed) is update_folder.py; a session made before files.csv existed counts as
edited any image whose mtime is newer than its features.npy.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .progress import CancelFlag, Progress, ProgressCallback, check_cancel, never_cancelled, no_progress
from .session import NOISE, ClusterInfo, Session
from .sources import FileIdentity, Skipped
from .update_folder import (  # noqa: F401 (re-exported: the folder side of an update)
    IDENTITIES,
    features_time,
    read_identities,
    save_update,
    undo_update,
    write_identities,
)

NEW_ROWS = "new_rows"  # session.params key: rows added by updates that the person has not looked at yet
NEW_CLUSTERS = "new_clusters"  # session.params key: clusters made by updates, not yet looked at
UNSORTED_NAME = "New (unsorted)"


class UpdateError(Exception):
    """An update that cannot run (no model for these features, a faces session); str(e) says why."""


@dataclass
class Rescan:
    """What the session's inputs hold now compared with its rows."""

    new_files: list[FileIdentity]  # not in the session yet
    changed: dict[int, FileIdentity]  # row -> identity now (the file was edited since its features)
    found: dict[int, FileIdentity]  # every row whose file is there now
    missing: list[int]  # rows whose file is not there now
    skipped: list[Skipped]
    inputs: list[str]  # the session's inputs plus the ones given


@dataclass
class UpdateResult:
    session: Session  # the updated session (a new object: the one given is left as it was)
    added: list[int] = field(default_factory=list)  # rows of the new images
    joined: list[int] = field(default_factory=list)  # added rows that joined an existing cluster
    new_clusters: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)  # rows newly marked missing
    reattached: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)  # edited files: features recomputed, place kept
    skipped: list[Skipped] = field(default_factory=list)
    identities: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (size, mtime_ns)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: added, joined, new clusters, missing, reattached (what the CLI prints)."""
        all_missing = int(self.session.missing.sum())
        return (
            f"{len(self.added)} added ({len(self.joined)} joined existing clusters, "
            f"{len(self.added) - len(self.joined)} in {len(self.new_clusters)} new clusters), "
            f"{len(self.missing)} newly missing ({all_missing} missing in all), "
            f"{len(self.reattached)} reattached, {len(self.changed)} changed, {len(self.skipped)} skipped"
        )


def rescan(
    session: Session,
    inputs: Sequence[str] = (),
    *,
    identities: dict[str, tuple[int, int]] | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> Rescan:
    """Scan the session's inputs (and `inputs`) and compare with its rows.

    identities: path -> (size, mtime_ns) as last recorded; None reads SESSION/files.csv.
    """
    from .sources import scan

    all_inputs = list(session.inputs)
    for given in inputs:
        path = os.path.abspath(os.path.expanduser(str(given)))
        if path not in all_inputs:
            all_inputs.append(path)
    params = session.params
    scanned = scan(
        all_inputs,
        include=list(params.get("include") or []),
        exclude=list(params.get("exclude") or []),
        on_progress=on_progress,
        cancelled=cancelled,
    )
    known = read_identities(session.path) if identities is None else identities
    reference = features_time(session.path)
    row_of = {path: row for row, path in enumerate(session.paths)}
    new_files, changed, found = [], {}, {}
    for identity in scanned.files:
        row = row_of.get(identity.path)
        if row is None:
            new_files.append(identity)
            continue
        found[row] = identity
        before = known.get(identity.path)
        if before is not None:
            edited = before != (identity.size, identity.mtime_ns)
        else:
            edited = reference is not None and identity.mtime_ns > reference
        if edited:
            changed[row] = identity
    missing = [row for row in range(len(session.paths)) if row not in found]
    return Rescan(new_files, changed, found, missing, list(scanned.skipped), all_inputs)


def update(
    session: Session,
    inputs: Sequence[str] = (),
    *,
    device: str = "auto",
    cache_dir: str | None = None,
    seed: int | None = None,
    identities: dict[str, tuple[int, int]] | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> UpdateResult:
    """Rescan and add new images to a copy of the session; existing rows keep place, cluster and curation.

    identities: path -> (size, mtime_ns) as last recorded; None reads SESSION/files.csv.
    """
    started = time.perf_counter()
    if session.params.get("faces"):
        raise UpdateError("this is a faces session: run `imgclust faces` again to add photos")
    if len(session.paths) == 0:
        raise UpdateError("the session holds no images to place new ones among")
    from .embeddings import is_external

    if is_external(session):
        raise UpdateError(
            "this session's features came from a file (--features): no model here can compute features "
            "for new images; add their rows to your features and run `imgclust cluster --features` again"
        )
    known = read_identities(session.path) if identities is None else dict(identities)
    scan_result = rescan(session, inputs, identities=known, on_progress=on_progress, cancelled=cancelled)
    check_cancel(cancelled)
    result = UpdateResult(session=session)
    to_compute = scan_result.new_files + list(scan_result.changed.values())
    vectors: dict[str, np.ndarray] = {}
    if to_compute:
        vectors, feature_skipped, warnings = _features(
            session, to_compute, device, cache_dir, on_progress, cancelled
        )
        result.skipped.extend(feature_skipped)
        result.warnings.extend(warnings)
    check_cancel(cancelled)
    on_progress(Progress("placing", 0, 1, message="placing new images on the map"))
    updated = copy_session(session)
    updated.inputs = list(scan_result.inputs)
    updated.skipped = list(scan_result.skipped) + list(result.skipped)
    for row, identity in sorted(scan_result.changed.items()):
        if identity.path in vectors:
            updated.features[row] = vectors[identity.path]
            result.changed.append(row)
    result.missing = [row for row in scan_result.missing if not session.missing[row]]
    result.reattached = sorted(row for row in scan_result.found if session.missing[row])
    updated.missing[scan_result.missing] = True
    updated.missing[result.reattached] = False
    new_files = [f for f in scan_result.new_files if f.path in vectors]
    if new_files:
        append_rows(updated, result, new_files, vectors, seed=seed, cancelled=cancelled)
    current = {
        **known,
        **{f.path: (f.size, f.mtime_ns) for f in scan_result.found.values()},
        **{f.path: (f.size, f.mtime_ns) for f in new_files},
    }
    result.identities = {p: current[p] for p in updated.paths if p in current}
    result.seconds = time.perf_counter() - started
    updated.timings["update"] = result.seconds
    updated.edits.append(
        {
            "op": "update",
            "time": round(time.time(), 3),
            "added": result.added,
            "joined": len(result.joined),
            "new_clusters": result.new_clusters,
            "missing": result.missing,
            "reattached": result.reattached,
            "changed": result.changed,
            "skipped": len(result.skipped),
            "inputs": list(scan_result.inputs),
            "seconds": round(result.seconds, 3),
        }
    )
    result.session = updated
    on_progress(Progress("placing", 1, 1, message=result.summary()))
    return result


def _features(session, files, device, cache_dir, on_progress, cancelled):
    """Feature rows for files with the session's own model, layer and input size (cache first)."""
    from .cache import FeatureCache, ThumbnailCache
    from .features import compute_features
    from .models import registry
    from .pipeline import session_extractor

    params = session.params
    try:
        registry.get_info(session.model_id)
    except ValueError:
        raise UpdateError(
            f"the session's features come from {session.model_id!r}, which this version cannot compute: "
            "new images cannot be given matching features"
        ) from None
    on_progress(Progress("model", 0, 1, message=f"loading {session.model_id}"))
    extractor = session_extractor(session, device=device, on_progress=on_progress, cancelled=cancelled)
    on_progress(Progress("model", 1, 1, message=f"loaded {session.model_id}"))
    if extractor.dim != session.features.shape[1]:
        raise UpdateError(
            f"{session.model_id} gives {extractor.dim} features but the session holds "
            f"{session.features.shape[1]}: was it made with other model settings?"
        )
    warnings = []
    stored_key = params.get("feature_cache_key")
    if stored_key and stored_key != extractor.cache_key:
        warnings.append(f"model settings differ from the session's ({extractor.cache_key} vs {stored_key})")
    use_cache = params.get("cache", True) is not False
    root = cache_dir or params.get("cache_dir")
    root_path = Path(root).expanduser() if root else None
    extracted = compute_features(
        files,
        extractor,
        feature_cache=FeatureCache(root_path) if use_cache else None,
        thumb_cache=ThumbnailCache(root_path) if use_cache else None,
        batch_size=params.get("batch_size"),
        on_progress=on_progress,
        cancelled=cancelled,
    )
    vectors = {f.path: extracted.features[i] for i, f in enumerate(extracted.files)}
    return vectors, list(extracted.skipped), warnings


def append_rows(
    updated: Session,
    result: UpdateResult,
    new_files: Sequence[FileIdentity],
    vectors: dict[str, np.ndarray],
    *,
    seed: int | None = None,
    mark_new: bool = True,
    cancelled: CancelFlag = never_cancelled,
) -> None:
    """Place, join or group the new files (features in `vectors` by path) and append them to `updated`.

    Fills result.added / joined / new_clusters. mark_new: name new clusters "New N" and list the rows and
    clusters as unseen (an update); False names them "Cluster N" (a progressive first run growing).
    """
    import scipy.linalg  # noqa: F401 (loaded before the thread limit below, which reaches loaded libraries only)
    from threadpoolctl import threadpool_limits

    from .placement import place
    from .reduce import l2_normalise, reduce

    params = updated.params
    seed = int(params.get("seed", 0) if seed is None else seed)
    n_old = len(updated.paths)
    old_features = updated.features
    new_features = np.stack([vectors[f.path] for f in new_files]).astype(np.float32)
    # One BLAS thread: the PCA of 720 x 1280 features took 1.3-9.1 CPU s with 2 threads on 2 busy cores
    # (threads spinning while they wait for each other), 0.2-0.3 s with 1; and one thread gives the same
    # placement whatever else the machine is doing.
    with threadpool_limits(1):
        reduced = reduce(old_features, n_components=params.get("pca_components", 50), seed=seed)
        new_data = l2_normalise(np.nan_to_num(new_features))
        if reduced.pca is not None:
            new_data = reduced.pca.transform(new_data).astype(np.float32)
        check_cancel(cancelled)
        placed = place(reduced.data, updated.coords, updated.labels, new_data, seed=seed, cancelled=cancelled)

    labels = placed.joined_cluster.copy()
    next_number = _next_new_number(updated)
    group_ids: dict[int, int] = {}
    for group in sorted(set(placed.group[placed.group >= 0].tolist())):
        rows = placed.group == group
        cid = (
            max(set(updated.clusters) | set(updated.labels.tolist()) | set(group_ids.values()) | {NOISE}) + 1
        )
        if not mark_new:
            name = f"Cluster {cid}"
        elif placed.unsorted[rows].all():
            name = UNSORTED_NAME
        else:
            name, next_number = f"New {next_number}", next_number + 1
        group_ids[group] = cid
        updated.clusters[cid] = ClusterInfo(cid, name)
        labels[rows] = cid

    m = len(new_files)
    rows = list(range(n_old, n_old + m))
    duplicate = np.full(m, -1, np.int64)
    twin = placed.nearest_old
    similarity = np.einsum("ij,ij->i", l2_normalise(new_features), l2_normalise(old_features[twin]))
    next_group = int(updated.duplicate_group.max(initial=-1)) + 1
    for i in np.flatnonzero(similarity >= 0.97).tolist():  # the pipeline's duplicate threshold
        group = int(updated.duplicate_group[twin[i]])
        if group < 0:
            group, next_group = next_group, next_group + 1
            updated.duplicate_group[twin[i]] = group
        duplicate[i] = group

    updated.paths = list(updated.paths) + [f.path for f in new_files]
    updated.features = np.concatenate([old_features, new_features])
    updated.coords = np.concatenate([updated.coords, placed.coords])
    updated.labels = np.concatenate([updated.labels, labels])
    updated.outlier_score = np.concatenate([updated.outlier_score, placed.outlier_score])
    updated.duplicate_group = np.concatenate([updated.duplicate_group, duplicate])
    updated.excluded = np.concatenate([updated.excluded, np.zeros(m, bool)])
    updated.missing = np.concatenate([updated.missing, np.zeros(m, bool)])
    if updated.tree is not None:
        # A new image hangs under the leaf of its nearest old image, so every tree level stays defined for
        # it (hierarchy.csv, re-cuts); images of a "New" cluster stay together at any re-cut, as a cluster
        # with no tree node does.
        leaf_of = np.concatenate([updated.tree.leaf_of, updated.tree.leaf_of[twin]])
        updated.tree = dataclasses.replace(updated.tree, leaf_of=leaf_of)
    all_data = np.concatenate([reduced.data, new_data])
    for cid in group_ids.values():
        members = np.flatnonzero(updated.labels == cid)
        centre = all_data[members].mean(axis=0)
        medoid = int(members[np.argmin(np.linalg.norm(all_data[members] - centre, axis=1))])
        updated.clusters[cid] = dataclasses.replace(updated.clusters[cid], medoid_index=medoid)
    if group_ids:
        _relink(updated, all_data)

    result.added = rows
    result.joined = [n_old + i for i in np.flatnonzero(placed.joined_cluster >= 0).tolist()]
    result.new_clusters = sorted(group_ids.values())
    if mark_new:
        params[NEW_ROWS] = sorted(set(params.get(NEW_ROWS, [])) | set(rows))
        params[NEW_CLUSTERS] = sorted(set(params.get(NEW_CLUSTERS, [])) | set(result.new_clusters))


def _relink(session: Session, data: np.ndarray) -> None:
    """Centroid linkage over every cluster, new ones included (the dendrogram's input)."""
    from scipy.cluster.hierarchy import linkage

    ids = session.cluster_ids()
    if len(ids) < 2:
        return
    centroids = np.stack([data[session.labels == c].mean(axis=0) for c in ids]).astype(np.float64)
    session.linkage = linkage(centroids, method="ward")
    session.linkage_cluster_ids = ids


def _next_new_number(session: Session) -> int:
    numbers = [
        int(m.group(1)) for info in session.clusters.values() if (m := re.fullmatch(r"New (\d+)", info.name))
    ]
    return max(numbers, default=0) + 1


def copy_session(session: Session) -> Session:
    """A copy whose arrays, tables and logs can change without touching the original."""
    return dataclasses.replace(
        session,
        paths=list(session.paths),
        features=session.features.copy(),
        coords=session.coords.copy(),
        labels=session.labels.copy(),
        outlier_score=session.outlier_score.copy(),
        duplicate_group=session.duplicate_group.copy(),
        excluded=session.excluded.copy(),
        missing=session.missing.copy(),
        clusters=dict(session.clusters),
        inputs=list(session.inputs),
        params=dict(session.params),
        timings=dict(session.timings),
        skipped=list(session.skipped),
        edits=list(session.edits),
    )


# ---- the unseen marks (GUI "New" filter)


def unseen_rows(session: Session) -> np.ndarray:
    """Rows added by updates that the person has not looked at yet."""
    rows = np.asarray(session.params.get(NEW_ROWS, []), np.int64)
    return rows[(rows >= 0) & (rows < len(session.paths))]


def mark_seen(session: Session, rows: Sequence[int] | None = None) -> None:
    """Clear the "new" mark of some rows (all when None); new clusters lose it with their last new row."""
    if rows is None:
        left: list[int] = []
    else:
        seen = {int(r) for r in rows}
        left = [r for r in session.params.get(NEW_ROWS, []) if int(r) not in seen]
    session.params[NEW_ROWS] = left
    still = set(session.labels[np.asarray(left, np.int64)].tolist()) if left else set()
    session.params[NEW_CLUSTERS] = [c for c in session.params.get(NEW_CLUSTERS, []) if c in still]
