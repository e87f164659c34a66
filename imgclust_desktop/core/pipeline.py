"""Runs the stages in order: scan -> features -> reduce -> embed -> cluster -> analyse -> Session.

Each stage reports its own Progress and checks the cancel flag; this module adds the per-stage timings,
the events the GUI uses to draw early (thumbnails, the map before clustering ends) and the parameters
that make a run reproducible. `recluster` redoes only the clustering from a session's stored features.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .cluster import ClusterParams
from .models.registry import DEFAULT_MODEL
from .progress import CancelFlag, Progress, ProgressCallback, check_cancel, never_cancelled, no_progress
from .session import ClusterInfo, Session
from .sources import FileIdentity

EventCallback = Callable[[str, object], None]
DEFAULT_INPUT_SIZE = 224
SMALL_SOURCE_EDGE = 64  # sources whose median long edge is at most this are "small" (icons, MNIST-like)
SMALL_INPUT_SIZE = 64
SMALL_LAYER = "blocks.4"
SIZE_SAMPLE = 64  # files whose headers are read to judge the source size


class PipelineError(Exception):
    """A run that cannot go on (no images, too few images); str(e) says why in words."""


@dataclass
class PipelineRequest:
    inputs: list[str]
    model_id: str = DEFAULT_MODEL
    weights_path: str | None = None
    layer: str | None = None
    embedding: str = "umap"  # umap tsne pca
    cluster: ClusterParams = field(default_factory=ClusterParams)
    pca_components: int | float | None = 50
    seed: int = 0
    device: str = "auto"
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    cache_dir: str | None = None
    batch_size: int | None = None
    workers: int | None = None
    use_cache: bool = True  # False: neither read nor write the feature/thumbnail caches
    input_size: int | None = None  # None: choose_input_size() for CNNs, the model's own size otherwise


def _no_event(kind: str, payload: object) -> None:
    """Default event callback: ignore."""


def _open_binary(path: str):
    return open(path, "rb")  # noqa: SIM115 (closed by the caller's with-block)


def median_long_edge(
    files: Sequence[FileIdentity], sample: int = SIZE_SAMPLE, *, open_file: Callable = _open_binary
) -> int | None:
    """Median long edge in pixels of up to `sample` evenly spread files (headers only); None if none read.

    open_file(path) gives a binary file object (remote.open_input for s3:// and other URLs).
    """
    from PIL import Image

    if not files:
        return None
    picks = np.unique(np.linspace(0, len(files) - 1, min(sample, len(files))).round().astype(int))
    edges = []
    for i in picks.tolist():
        try:
            with open_file(files[i].path) as handle, Image.open(handle) as im:
                edges.append(max(im.size))
        except Exception:  # unreadable files are reported by the decode stage, not here
            continue
    return int(np.median(edges)) if edges else None


def choose_input(
    files: Sequence[FileIdentity], *, open_file: Callable = _open_binary
) -> tuple[int, str | None]:
    """(network input side, feature layer) for the EfficientNet extractor given the source files.

    Photos: 224 px and the 1280-d pooled head (ImageNet semantics). Small sources (median long edge
    <= 64 px: digits, Fashion-MNIST, icons) carry no detail a 224 px pass can use; upscaled 8x8 or 28x28
    images reach the head as blur, and its ImageNet classes do not describe strokes. There a 64 px pass
    tapped at blocks.4 (112-d, mid-level shape features) is both ~10x faster and far better: measured on
    digits with automatic k, ACC 0.95 against 0.20 for the head at 224 px (bench/quality.py).
    """
    edge = median_long_edge(files, open_file=open_file)
    if edge is not None and edge <= SMALL_SOURCE_EDGE:
        return SMALL_INPUT_SIZE, SMALL_LAYER
    return DEFAULT_INPUT_SIZE, None


def choose_input_size(files: Sequence[FileIdentity]) -> int:
    """Network input side for the EfficientNet extractor (see choose_input)."""
    return choose_input(files)[0]


def run(
    request: PipelineRequest,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    on_event: EventCallback = _no_event,
) -> Session:
    """Run every stage for a request and return the Session (not saved; see session.save)."""
    from . import features as features_mod
    from . import sources
    from .cache import FeatureCache, ThumbnailCache
    from .models import registry

    timings: dict[str, float] = {}
    started = time.perf_counter()

    clock = time.perf_counter()
    scanned = sources.scan(
        request.inputs,
        include=list(request.include),
        exclude=list(request.exclude),
        on_progress=on_progress,
        cancelled=cancelled,
    )
    timings["scan"] = time.perf_counter() - clock
    on_event("scanned", scanned)
    if not scanned.files:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in scanned.skipped[:3])
        raise PipelineError(
            f"no images found in {', '.join(map(str, request.inputs))}" + (f" ({reasons})" if reasons else "")
        )
    check_cancel(cancelled)

    clock = time.perf_counter()
    on_progress(Progress("model", 0, 1, message=f"loading {request.model_id}"))
    info = registry.get_info(request.model_id)
    input_size, layer = request.input_size, request.layer
    if info.family == "efficientnet" and input_size is None and layer is None:
        input_size, layer = choose_input(scanned.files)
    extractor = registry.create(
        request.model_id,
        device=request.device,
        weights_path=request.weights_path,
        layer=layer,
        input_size=input_size,
        on_progress=on_progress,
        cancelled=cancelled,
    )
    on_progress(Progress("model", 1, 1, message=f"loaded {request.model_id}"))
    timings["model"] = time.perf_counter() - clock
    check_cancel(cancelled)

    clock = time.perf_counter()
    root = None if request.cache_dir is None else _path(request.cache_dir)
    feature_cache = FeatureCache(root) if request.use_cache else None
    thumb_cache = ThumbnailCache(root) if request.use_cache else None
    extracted = features_mod.compute_features(
        scanned.files,
        extractor,
        feature_cache=feature_cache,
        thumb_cache=thumb_cache,
        batch_size=request.batch_size,
        workers=request.workers,
        on_progress=on_progress,
        cancelled=cancelled,
        on_thumbnail=lambda index, jpeg: on_event("thumbnail", (index, jpeg)),
    )
    timings["features"] = time.perf_counter() - clock
    on_event("features", extracted)
    skipped = list(scanned.skipped) + list(extracted.skipped)
    if len(extracted.files) < 3:
        raise PipelineError(
            f"only {len(extracted.files)} readable image(s) found; clustering needs at least 3"
            + (f" ({len(skipped)} files skipped)" if skipped else "")
        )

    params = {
        "model": request.model_id,
        "weights_path": request.weights_path,
        "layer": layer,
        "input_size": int(getattr(extractor, "input_size", input_size or 0) or 0),
        "feature_cache_key": getattr(extractor, "cache_key", request.model_id),
        "device": str(getattr(extractor, "device", request.device)),
        "embedding": request.embedding,
        "pca_components": request.pca_components,
        "seed": request.seed,
        "include": list(request.include),
        "exclude": list(request.exclude),
        "cache": request.use_cache,
        "cache_dir": request.cache_dir,
        "batch_size": request.batch_size,
        "features_computed": extracted.computed,
    }
    session = Session(
        paths=[f.path for f in extracted.files],
        features=extracted.features,
        coords=np.zeros((len(extracted.files), 2), np.float32),
        labels=np.full(len(extracted.files), -1, np.int64),
        model_id=request.model_id,
        inputs=[str(p) for p in request.inputs],
        params=params,
        timings=timings,
        skipped=skipped,
    )
    cluster_params = dataclasses.replace(request.cluster, seed=request.seed)
    result = _cluster_stages(
        session,
        cluster_params,
        embed_method=request.embedding,
        on_progress=on_progress,
        cancelled=cancelled,
        on_event=on_event,
        extractor=extractor,
    )
    result.timings["total"] = time.perf_counter() - started
    return result


def recluster(
    session: Session,
    params: ClusterParams,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> Session:
    """A new Session clustered with new parameters from session.features (the map and features kept)."""
    fresh = dataclasses.replace(
        session,
        labels=np.full(len(session.paths), -1, np.int64),
        clusters={},
        params=dict(session.params),
        timings={k: v for k, v in session.timings.items() if k in ("scan", "model", "features", "embed")},
        excluded=session.excluded.copy(),
        edits=list(session.edits),
    )
    result = _cluster_stages(
        fresh, params, embed_method=None, on_progress=on_progress, cancelled=cancelled, on_event=_no_event
    )
    result.edits.append(
        {"op": "recluster", "time": round(time.time(), 3), "cluster": result.params["cluster"]}
    )
    return result


def name_clusters(session: Session, extractor: object | None) -> None:
    """Automatic names for every cluster the person has not renamed (and the tree's leaf words).

    extractor: the session's model when at hand; None loads it only if its classifier head can name
    (the default model's pooled features) and falls back to folder names otherwise.
    """
    from .names import leaf_terms, term_probabilities
    from .recut import apply_auto_names

    if extractor is None and session.model_id and not session.params.get("layer"):
        extractor = _head_extractor(session)
    try:
        probs = None if extractor is None else term_probabilities(extractor, session.features)
    except (OSError, ImportError, RuntimeError, ValueError):  # no class table here: folder names instead
        probs = None
    tree = session.tree
    if probs is not None:
        vocabulary, p = probs
        if tree is not None:
            session.leaf_terms = leaf_terms(vocabulary, p, tree.leaf_of, tree.n_leaves)
            terms, leaf_of = session.leaf_terms, tree.leaf_of
        else:  # no tree: each cluster is its own "leaf"
            leaf_of = np.where(session.labels >= 0, session.labels, session.labels.max() + 1)
            terms = leaf_terms(vocabulary, p, leaf_of, int(leaf_of.max()) + 1)
    else:
        session.leaf_terms, terms, leaf_of = None, None, None
    apply_auto_names(session, terms, leaf_of)


def _head_extractor(session: Session) -> object | None:
    """The session's model, loaded only when its classifier head can name clusters from stored features."""
    from .models import registry

    try:
        info = registry.get_info(session.model_id)
    except (KeyError, ValueError):
        return None
    if info.family not in ("efficientnet", "clip") or info.needs_download:
        return None
    try:
        return registry.create(
            session.model_id, device="cpu", weights_path=session.params.get("weights_path")
        )
    except Exception:  # a model that cannot load here names nothing; folder names still do
        return None


def _cluster_stages(
    session: Session,
    params: ClusterParams,
    *,
    embed_method: str | None,
    on_progress: ProgressCallback,
    cancelled: CancelFlag,
    on_event: EventCallback,
    extractor: object | None = None,
) -> Session:
    """reduce -> (embed) -> cluster -> analyse -> names, filling the session in place; embed_method None keeps
    the map. extractor: the session's model when at hand, for naming (see name_clusters)."""
    from .analyse import analyse
    from .cluster import cluster
    from .embed import SAMPLE_ABOVE, embed, nearest_neighbours, sampled_neighbours, umap_knn_size
    from .reduce import reduce

    timings = session.timings
    seed = int(session.params.get("seed", params.seed))
    clock = time.perf_counter()
    on_progress(Progress("reduce", 0, 1))
    reduced = reduce(session.features, n_components=session.params.get("pca_components", 50), seed=seed)
    on_progress(Progress("reduce", 1, 1))
    timings["reduce"] = time.perf_counter() - clock
    session.params["pca_kept"] = reduced.n_components
    session.params["variance_kept"] = float(reduced.variance_kept)
    check_cancel(cancelled)

    knn = None
    if embed_method == "umap" or params.space == "umap":
        # One neighbour search for both UMAP runs (the map and the clustering space); above SAMPLE_ABOVE
        # rows both are fitted on one sample and its graph (sampled_neighbours).
        clock = time.perf_counter()
        if len(reduced.data) > SAMPLE_ABOVE:
            knn = sampled_neighbours(reduced.data, seed=seed, on_progress=on_progress, cancelled=cancelled)
        else:
            knn = nearest_neighbours(
                reduced.data,
                umap_knn_size(len(reduced.data)),
                on_progress=on_progress,
                cancelled=cancelled,
                seed=seed,
            )
        timings["neighbours"] = time.perf_counter() - clock

    if embed_method is not None:
        clock = time.perf_counter()
        coords = embed(
            reduced.data,
            method=embed_method,
            seed=seed,
            on_progress=on_progress,
            cancelled=cancelled,
            knn=knn,
        )
        session.coords = np.asarray(coords, np.float32)
        timings["embed"] = time.perf_counter() - clock
        on_event("embedded", session.coords)
    check_cancel(cancelled)

    clock = time.perf_counter()
    clustering = cluster(reduced.data, params, on_progress=on_progress, cancelled=cancelled, knn=knn)
    timings["cluster"] = time.perf_counter() - clock
    on_event("clustered", clustering)
    check_cancel(cancelled)

    clock = time.perf_counter()
    on_progress(Progress("analyse", 0, 1))
    analysis = analyse(
        reduced.data,
        clustering.labels,
        outlier_score=clustering.outlier_score,
        features=session.features,
        knn_distances=knn.distances if knn is not None else None,
        knn_indices=knn.indices if knn is not None else None,
        knn_sample=knn.sample if knn is not None else None,
    )
    on_progress(Progress("analyse", 1, 1))
    timings["analyse"] = time.perf_counter() - clock

    session.labels = np.asarray(clustering.labels, np.int64)
    session.outlier_score = np.asarray(analysis.outlier_score, np.float32)
    session.duplicate_group = np.asarray(analysis.duplicate_group, np.int64)
    session.tree = clustering.tree
    session.level = None if clustering.tree is None else int(clustering.tree.default_k)
    nodes = None if clustering.tree is None else clustering.tree.node_of_clusters(session.level)
    session.clusters = {
        int(cid): ClusterInfo(
            int(cid),
            f"Cluster {cid}",
            analysis.medoid_index.get(int(cid)),
            node=None if nodes is None else int(nodes[cid]),
        )
        for cid in np.unique(session.labels[session.labels >= 0]).tolist()
    }
    session.scores = dict(clustering.scores)
    session.k_curve = clustering.k_curve
    session.linkage = analysis.cluster_linkage
    session.linkage_cluster_ids = [int(c) for c in analysis.linkage_cluster_ids]
    session.params["cluster"] = dataclasses.asdict(clustering.params)
    clock = time.perf_counter()
    name_clusters(session, extractor)  # every path that clusters names its clusters
    timings["names"] = time.perf_counter() - clock
    if session.tree is not None:
        from .recut import remember_level_medoids

        clock = time.perf_counter()
        remember_level_medoids(session.tree, session.features)  # `imgclust recut` then reads no features
        timings["tree_medoids"] = time.perf_counter() - clock
    return session


def session_extractor(
    session: Session,
    *,
    device: str = "auto",
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> object:
    """The session's own model, with the layer and input size its features were made with."""
    from .models import registry

    params = session.params
    return registry.create(
        session.model_id,
        device=device,
        weights_path=params.get("weights_path"),
        layer=params.get("layer"),
        input_size=params.get("input_size") or None,
        on_progress=on_progress,
        cancelled=cancelled,
    )


def features_for_images(
    session: Session,
    paths: Sequence[str],
    *,
    device: str = "auto",
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> np.ndarray:
    """Features of images outside the session, with the session's own model, layer and input size."""
    from .decode import DecodeError, decode
    from .features import decode_side, features_from_arrays

    extractor = session_extractor(session, device=device, on_progress=on_progress, cancelled=cancelled)
    images = []
    for path in paths:
        try:
            images.append(decode(path, max_side=decode_side(extractor), thumb_sizes=()).image)
        except DecodeError as exc:
            raise PipelineError(f"cannot read {path}: {exc}") from None
    vectors = features_from_arrays(images, extractor, on_progress=on_progress, cancelled=cancelled)
    if vectors.shape[1] != session.features.shape[1]:
        raise PipelineError(
            f"{session.model_id} gives {vectors.shape[1]} features but the session holds "
            f"{session.features.shape[1]}: was it made with other model settings?"
        )
    return vectors


def _path(value: str):
    from pathlib import Path

    return Path(value).expanduser()
