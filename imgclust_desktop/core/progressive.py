"""First results early on big folders: cluster a spread sample first, then add the rest in batches.

A folder of 70k images takes minutes of features on a CPU. Here the scan is followed by a full run on an
evenly spread sample (every (n/sample)-th file in path order, so every folder is represented) whose map
and clusters are handed out at once (event "first"); the remaining files then go through the update path
batch by batch (features, placement among their nearest mapped neighbours, join or new cluster): points
appear, existing ones stay put (event "grown" after each batch). When every image has features the caller
may re-lay-out everything once (`relayout`), which costs what a cached run costs; the window offers it, or
does it at once when nothing was curated yet.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from .progress import CancelFlag, Progress, ProgressCallback, check_cancel, never_cancelled, no_progress
from .session import Session

SAMPLE = 3000
BATCH = 5000
EventCallback = Callable[[str, object], None]


def _no_event(kind: str, payload: object) -> None:
    """Default event callback: ignore."""


def spread_sample(n: int, size: int) -> np.ndarray:
    """Indices of `size` rows spread evenly over 0..n-1 (all of them when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, size).round().astype(np.int64))


def run_progressive(
    request,
    *,
    sample_size: int = SAMPLE,
    batch_size: int = BATCH,
    relayout: bool = False,
    scanned=None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    on_event: EventCallback = _no_event,
) -> Session:
    """A pipeline.run that shows a sample's session first ("first"), then grows it ("grown", per batch).

    Returns the session holding every image; with relayout=True its map and clusters are recomputed from
    all the features at the end (as a plain run would make them). scanned: the inputs' ScanResult when
    the caller has one already. Folders of at most sample_size images
    get a plain pipeline.run.
    """
    from . import pipeline, sources
    from .cache import FeatureCache, ThumbnailCache
    from .features import compute_features
    from .models import registry
    from .update import UpdateResult, append_rows, copy_session

    started = time.perf_counter()
    if scanned is None:
        scanned = sources.scan(
            request.inputs, include=list(request.include), exclude=list(request.exclude),
            on_progress=on_progress, cancelled=cancelled,
        )  # fmt: skip
    files = scanned.files
    if len(files) <= sample_size:
        return pipeline.run(request, on_progress=on_progress, cancelled=cancelled, on_event=on_event)
    picks = spread_sample(len(files), sample_size)
    first_request = dataclasses.replace(request, inputs=[files[i].path for i in picks.tolist()])
    session = pipeline.run(first_request, on_progress=on_progress, cancelled=cancelled)
    session.inputs = [str(p) for p in request.inputs]
    session.skipped = list(scanned.skipped) + list(session.skipped)
    session.timings["first_results"] = time.perf_counter() - started
    on_event("first", session)

    params = session.params
    extractor = registry.create(
        session.model_id, device=request.device, weights_path=params.get("weights_path"),
        layer=params.get("layer"), input_size=params.get("input_size") or None,
    )  # fmt: skip
    root = None if request.cache_dir is None else pipeline._path(request.cache_dir)
    feature_cache = FeatureCache(root) if request.use_cache else None
    thumb_cache = ThumbnailCache(root) if request.use_cache else None
    chosen = set(picks.tolist())
    rest = [f for i, f in enumerate(files) if i not in chosen]
    for start in range(0, len(rest), batch_size):
        check_cancel(cancelled)
        batch = rest[start : start + batch_size]
        before = len(session.paths)
        extracted = compute_features(
            batch, extractor, feature_cache=feature_cache, thumb_cache=thumb_cache,
            batch_size=request.batch_size, workers=request.workers, cancelled=cancelled,
            on_progress=lambda p, before=before: on_progress(
                Progress("features", before + p.done, len(files), message="adding the rest")
            ),
        )  # fmt: skip
        grown = copy_session(session)
        grown.skipped = list(grown.skipped) + list(extracted.skipped)
        vectors = {f.path: extracted.features[i] for i, f in enumerate(extracted.files)}
        if vectors:
            append_rows(grown, UpdateResult(session=grown), extracted.files, vectors, mark_new=False,
                        cancelled=cancelled)  # fmt: skip
        session = grown
        on_event("grown", session)
    session.timings["all_features"] = time.perf_counter() - started
    if relayout:
        session = relayout_session(session, request, on_progress=on_progress, cancelled=cancelled)
    session.timings["total"] = time.perf_counter() - started
    return session


def relayout_session(
    session: Session,
    request,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> Session:
    """A new map and clusters from every stored feature (what a cached full run gives), as a new Session."""
    from . import pipeline

    fresh = dataclasses.replace(
        session,
        labels=np.full(len(session.paths), -1, np.int64),
        clusters={},
        params=dict(session.params),
        timings=dict(session.timings),
        excluded=session.excluded.copy(),
        edits=list(session.edits),
    )
    params = dataclasses.replace(request.cluster, seed=request.seed)
    # TODO(lead): uses the pipeline's private _cluster_stages (map + clusters from features); switch to a
    # public "re-lay-out" entry point if the tree work adds one.
    result = pipeline._cluster_stages(
        fresh, params, embed_method=request.embedding, on_progress=on_progress, cancelled=cancelled,
        on_event=lambda kind, payload: None,
    )  # fmt: skip
    result.edits.append({"op": "relayout", "time": round(time.time(), 3), "images": len(result.paths)})
    return result
