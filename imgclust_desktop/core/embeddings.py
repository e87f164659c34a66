"""Bring your own embeddings: cluster an N x D array a person already has, one image path per row.

    imgclust cluster --features F.npy --paths P.txt --out SESSION
    imgclust cluster --features STORE/ --out SESSION        # STORE holds features.npy + paths.txt

Everything is checked before any work starts (shape, dtype, non-finite rows, one path per row), each
problem in one sentence. A path whose file is not on disk (an archive on a disconnected drive) stays in
the session with Session.missing set: it is never dropped and never fails the run. The session records
model id "external", so commands that need the model (similar with an outside image, update) can say
why they cannot run instead of embedding with a model the features did not come from.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cluster import ClusterParams
from .mapped import release
from .progress import CancelFlag, Progress, ProgressCallback, check_cancel, never_cancelled, no_progress
from .session import Session

EXTERNAL_MODEL = "external"
FEATURES_NAME = "features.npy"
PATHS_NAME = "paths.txt"
FINITE_CHUNK = 65536  # rows checked for NaN/inf at a time: bounded memory on a memory-mapped 1M x 1280 file
MIN_ROWS = 3


class EmbeddingsError(ValueError):
    """Embeddings that cannot be used as given; str(e) is one sentence saying why."""


@dataclass
class Embeddings:
    features: np.ndarray  # float [n, dim], memory-mapped from the .npy file where possible
    paths: list[str]  # absolute, one per row
    missing: np.ndarray  # bool [n]: the file is not on disk now
    features_file: str
    paths_file: str


def resolve(features: str | os.PathLike, paths: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(features .npy, paths .txt) from the two files, or from a folder holding features.npy + paths.txt."""
    features = Path(features).expanduser()
    if features.is_dir():
        store = features
        features = store / FEATURES_NAME
        if paths is None:
            paths = store / PATHS_NAME
        if not features.is_file():
            raise EmbeddingsError(f"{store} holds no {FEATURES_NAME}")
    if paths is None:
        raise EmbeddingsError(f"--paths is needed with --features {features} (one image path per row)")
    paths = Path(paths).expanduser()
    if not features.is_file():
        raise EmbeddingsError(f"features file {features} does not exist")
    if not paths.is_file():
        raise EmbeddingsError(f"paths file {paths} does not exist")
    return features, paths


def read_paths(path: Path) -> list[str]:
    """One path per line (UTF-8); relative paths are taken from the paths file's folder; no empty lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EmbeddingsError(f"paths file {path} is not UTF-8 text ({exc.reason})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing blank line is only the end of the file
    base = Path(path).resolve().parent
    out = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry:
            raise EmbeddingsError(f"paths file {path} line {number} is empty (one path per feature row)")
        out.append(entry if os.path.isabs(entry) else os.path.normpath(os.path.join(base, entry)))
    return out


def non_finite_rows(features: np.ndarray, limit: int = 5) -> tuple[int, list[int]]:
    """(how many rows hold NaN or inf, the first `limit` of them), read in chunks."""
    count, first = 0, []
    for start in range(0, len(features), FINITE_CHUNK):
        bad = ~np.isfinite(features[start : start + FINITE_CHUNK]).all(axis=1)
        release(features)
        if bad.any():
            rows = np.flatnonzero(bad) + start
            count += len(rows)
            first.extend(rows[: max(0, limit - len(first))].tolist())
    return count, first


def load(
    features: str | os.PathLike,
    paths: str | os.PathLike | None = None,
    *,
    on_progress: ProgressCallback = no_progress,
) -> Embeddings:
    """Load and check features + paths; raises EmbeddingsError before any work if they cannot be used."""
    features_file, paths_file = resolve(features, paths)
    on_progress(Progress("embeddings", 0, 3, message=f"reading {features_file.name}"))
    try:
        array = np.load(features_file, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise EmbeddingsError(f"{features_file} is not a plain .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise EmbeddingsError(f"cannot read {features_file}: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise EmbeddingsError(f"{features_file} is not a single .npy array (an .npz archive?)")
    if array.ndim != 2:
        raise EmbeddingsError(f"{features_file} has shape {array.shape}; expected 2-D (images x dimensions)")
    n, dim = array.shape
    if n == 0 or dim == 0:
        raise EmbeddingsError(f"{features_file} is empty (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.floating):
        raise EmbeddingsError(f"{features_file} holds {array.dtype}; expected floating point (float16/32/64)")
    if n < MIN_ROWS:
        raise EmbeddingsError(f"{features_file} has {n} row(s); clustering needs at least {MIN_ROWS}")
    path_list = read_paths(paths_file)
    if len(path_list) != n:
        raise EmbeddingsError(
            f"{paths_file} lists {len(path_list)} paths but {features_file.name} has {n} rows; "
            "they must match one to one, in the same order"
        )
    on_progress(Progress("embeddings", 1, 3, message="checking for NaN/inf"))
    bad, first = non_finite_rows(array)
    if bad:
        shown = ", ".join(map(str, first)) + (", …" if bad > len(first) else "")
        raise EmbeddingsError(
            f"{features_file} has {bad} row(s) with NaN or inf values (rows {shown}; 0-based)"
        )
    on_progress(Progress("embeddings", 2, 3, message="checking which files are on disk"))
    missing = np.fromiter((not os.path.isfile(p) for p in path_list), dtype=bool, count=n)
    on_progress(Progress("embeddings", 3, 3))
    return Embeddings(array, path_list, missing, str(features_file), str(paths_file))


@dataclass
class FeaturesRequest:
    features: str  # .npy file, or a folder holding features.npy + paths.txt
    paths: str | None = None
    embedding: str = "umap"
    cluster: ClusterParams = field(default_factory=ClusterParams)
    pca_components: int | float | None = 50
    seed: int = 0


def run(
    request: FeaturesRequest,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    on_event: Callable[[str, object], None] = lambda kind, payload: None,
) -> Session:
    """A Session from a person's own embeddings: reduce -> embed -> cluster -> analyse (no model, no decode)."""
    from .pipeline import _cluster_stages

    started = time.perf_counter()
    clock = time.perf_counter()
    loaded = load(request.features, request.paths, on_progress=on_progress)
    timings = {"load": time.perf_counter() - clock}
    check_cancel(cancelled)
    n = len(loaded.paths)
    params = {
        "model": EXTERNAL_MODEL,
        "features_source": "external",  # not made by a registry model: similar/update need the model
        "features_file": loaded.features_file,
        "paths_file": loaded.paths_file,
        "features_dtype": str(loaded.features.dtype),
        "embedding": request.embedding,
        "pca_components": request.pca_components,
        "seed": request.seed,
        "cache": False,  # no thumbnail cache entries exist for these files: decode on demand
        "missing": int(loaded.missing.sum()),
    }
    features = loaded.features
    if features.dtype not in (np.float16, np.float32):
        features = np.asarray(features, np.float32)  # float64: the stages read float32 (or float16) rows
    session = Session(
        paths=loaded.paths,
        features=features,
        coords=np.zeros((n, 2), np.float32),
        labels=np.full(n, -1, np.int64),
        missing=loaded.missing,
        model_id=EXTERNAL_MODEL,
        inputs=[loaded.features_file, loaded.paths_file],
        params=params,
        timings=timings,
    )
    on_event("loaded", loaded)
    cluster_params = dataclasses.replace(request.cluster, seed=request.seed)
    result = _cluster_stages(
        session,
        cluster_params,
        embed_method=request.embedding,
        on_progress=on_progress,
        cancelled=cancelled,
        on_event=on_event,
    )
    result.timings["total"] = time.perf_counter() - started
    return result


def is_external(session: Session) -> bool:
    """True when the session's features came from a file, not from a model this app can run."""
    return session.model_id == EXTERNAL_MODEL or session.params.get("features_source") == "external"
