"""Feature extraction on a Ray cluster (`--engine ray`): Ray Data batch inference into a feature store.

Flow: scan on the driver (the local scan for folders every node sees at the same path, a pyarrow listing
for object-store URLs) -> plan shards (feature_store) -> shards already on disk are kept, shards whose
every row is in the local feature cache are written from it -> the rest become a Ray Dataset of file
rows, one block per shard -> `map_batches(decode_batch)` tasks decode with the local engine's code
(ingest.decode_file / remote.decode_url: same skip reasons) -> `map_batches(EmbedActor)`, an actor pool
that loads the model once per slot (num_gpus=1 and half precision on GPU nodes, as the local engine) ->
the driver streams results, writes each shard as it completes, and puts rows and thumbnails into its
local caches under the local engine's keys -> consolidate.

Ray is an optional extra: it is imported inside functions only, and `import_ray` says how to install it.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import feature_store as fstore
from . import ray_workers
from .models.registry import DEFAULT_MODEL
from .progress import (
    CancelFlag,
    Cancelled,
    Progress,
    ProgressCallback,
    RateMeter,
    check_cancel,
    never_cancelled,
    no_progress,
)
from .ray_workers import THUMB_SIZES
from .sources import FileIdentity, ScanResult, Skipped

RAY_INSTALL = "pip install 'imgclust-desktop[ray]'"
_POLL_SECONDS = 0.2  # how often the driver looks at the cancel flag while it waits for results
_DECODE_BATCH = 16


class RayUnavailable(RuntimeError):
    """Ray is not installed (str(e) says how to install it) or the cluster cannot be reached."""


def import_ray():
    """The ray module with Ray Data, or RayUnavailable naming the install command."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(
            f"--engine ray needs Ray, which is not installed; install it with: {RAY_INSTALL}"
        ) from None
    return ray


@dataclass
class RayJob:
    inputs: list[str]
    model_id: str = DEFAULT_MODEL
    weights_path: str | None = None
    layer: str | None = None
    input_size: int | None = None  # None: pipeline.choose_input for EfficientNet, as a local run
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    device: str = "auto"  # auto: GPU actors when the cluster has GPUs; cpu; cuda
    workers: int | None = None  # model actors (None: one per GPU, else half the cluster's CPUs)
    batch_size: int | None = None  # images per model call (None: 64 on GPU, 8 on CPU)
    shard_size: int = fstore.DEFAULT_SHARD_SIZE
    address: str | None = None  # Ray address; None: RAY_ADDRESS, a local `ray start` cluster, or a new one
    cache_dir: str | None = None
    use_cache: bool = True


@dataclass
class RayRun:
    store: Path
    meta: dict  # store.json as written
    scanned: ScanResult
    shards_total: int = 0
    shards_kept: int = 0  # already on disk from an earlier (killed) run
    shards_from_cache: int = 0
    shards_computed: int = 0  # by Ray this run
    files_computed: int = 0
    seconds: float = 0.0


def scan_inputs(
    inputs: Sequence[str], include=(), exclude=(), *, on_progress=no_progress, cancelled=never_cancelled
) -> ScanResult:
    """The local scan for paths, a pyarrow listing for URLs; one sorted file list and skip list."""
    from . import remote, sources

    urls = [str(p) for p in inputs if remote.is_url(str(p))]
    paths = [p for p in inputs if not remote.is_url(str(p))]
    result = ScanResult()
    if paths:
        result = sources.scan(
            paths, include=include, exclude=exclude, on_progress=on_progress, cancelled=cancelled
        )
    if urls:
        listed = remote.scan_urls(urls, include=include, exclude=exclude, cancelled=cancelled)
        result = ScanResult(
            sorted(result.files + listed.files, key=lambda f: f.path),
            sorted(result.skipped + listed.skipped, key=lambda s: s.path),
        )
    return result


def model_options(job: RayJob, files: Sequence[FileIdentity]) -> dict:
    """Model id, weights, layer and input size exactly as a local run on these files would choose them."""
    from . import pipeline, remote
    from .models import registry

    input_size, layer = job.input_size, job.layer
    if registry.get_info(job.model_id).family == "efficientnet" and input_size is None and layer is None:
        if files and remote.is_url(files[0].path):
            input_size, layer = pipeline.choose_input(files, open_file=remote.open_input)
        else:
            input_size, layer = pipeline.choose_input(files)
    return {
        "model_id": job.model_id,
        "weights_path": job.weights_path,
        "layer": layer,
        "input_size": input_size,
    }


def extract_to_store(
    job: RayJob,
    store: Path,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    consolidate: bool = True,
) -> RayRun:
    """Features of every image under job.inputs into `store`, computed on Ray; resumes a killed run."""
    from .cache import FeatureCache, ThumbnailCache
    from .features import decode_side
    from .models import registry

    ray = import_ray()
    started = time.perf_counter()
    store = Path(store)
    scanned = scan_inputs(job.inputs, job.include, job.exclude, on_progress=on_progress, cancelled=cancelled)
    check_cancel(cancelled)
    options = model_options(job, scanned.files)
    on_progress(Progress("model", 0, 1, message=f"checking {job.model_id}"))
    # the driver builds the model once on its CPU for the cache key, width and decode size the actors use
    probe = registry.create(
        options["model_id"],
        device="cpu",
        weights_path=options["weights_path"],
        layer=options["layer"],
        input_size=options["input_size"],
    )
    on_progress(Progress("model", 1, 1))
    meta = {
        "engine": "ray",
        "model": job.model_id,
        "weights_path": job.weights_path,
        "layer": options["layer"],
        "input_size": int(probe.input_size),
        "feature_cache_key": probe.cache_key,
        "dim": int(probe.dim),
        "inputs": [str(p) for p in job.inputs],
        "include": list(job.include),
        "exclude": list(job.exclude),
        "shard_size": job.shard_size,
        "counts": {"files": len(scanned.files), "scan_skipped": len(scanned.skipped)},
    }
    fstore.begin(store, meta)
    shards = fstore.plan_shards(scanned.files, probe.cache_key, job.shard_size)
    run = RayRun(store, meta, scanned, shards_total=len(shards))
    todo = [s for s in shards if not fstore.shard_done(store, s)]
    run.shards_kept = len(shards) - len(todo)
    feature_cache = thumb_cache = None
    if job.use_cache:
        root = None if job.cache_dir is None else Path(job.cache_dir).expanduser()
        feature_cache, thumb_cache = FeatureCache(root), ThumbnailCache(root)
        todo = _write_cached_shards(store, todo, probe, feature_cache, thumb_cache, run)
    spec = {**options, "max_side": decode_side(probe), "dim": int(probe.dim)}
    del probe
    if todo:
        own_ray = _connect(ray, job.address)
        try:
            _run_dataset(ray, job, spec, store, todo, feature_cache, thumb_cache, run, on_progress, cancelled)
        except (Cancelled, KeyboardInterrupt):
            # the result reader may still be inside Ray Data when Ray goes away: its complaints are noise
            logging.getLogger("ray.data").setLevel(logging.CRITICAL)
            raise
        finally:
            if own_ray:
                ray.shutdown()
    meta["timings"] = {"total": round(time.perf_counter() - started, 3)}
    meta["counts"].update(
        shards_kept=run.shards_kept,
        shards_from_cache=run.shards_from_cache,
        shards_computed=run.shards_computed,
        files_computed=run.files_computed,
    )
    if consolidate:
        on_progress(Progress("store", 0, 1, message="joining shards"))
        run.meta = fstore.consolidate(store, shards, scanned.skipped, meta)
        on_progress(Progress("store", 1, 1))
    run.seconds = time.perf_counter() - started
    return run


def _write_cached_shards(store, shards, probe, feature_cache, thumb_cache, run) -> list:
    """Write the shards whose every row (and thumbnail) is in the local cache; return the others."""
    rest = []
    for shard in shards:
        keys = [f.key() for f in shard.files]
        found = feature_cache.get_many(keys, probe.cache_key)
        thumbs = thumb_cache.has_all(keys, THUMB_SIZES[0]) & thumb_cache.has_all(keys, THUMB_SIZES[1])
        if len(found) == len(keys) and len(thumbs) == len(keys) and keys:
            features = np.stack([found[k] for k in keys]).astype(np.float32)
            if features.shape[1] == probe.dim:
                fstore.write_shard(
                    store, shard, fstore.ShardRows([f.path for f in shard.files], keys, features)
                )
                run.shards_from_cache += 1
                continue
        rest.append(shard)
    return rest


def _connect(ray, address: str | None) -> bool:
    """Join (or start) a Ray cluster; True when this call did, so the caller shuts it down again."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {address or 'this machine'}: {error}"
        ) from None
    return True


def plan_actors(resources: dict, device: str, workers: int | None) -> dict:
    """How many model actors, with which resources and on which device, for a cluster's resources."""
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    if device == "cuda" and gpus < 1:
        raise RayUnavailable("--device cuda was asked for but the Ray cluster has no GPUs")
    if device in ("auto", "cuda") and gpus >= 1:
        count = min(workers or gpus, gpus)
        return {"device": "cuda", "actors": count, "num_gpus": 1, "num_cpus": 1, "threads": None}
    count = max(1, workers or int(cpus // 2))
    # leave half a CPU for the decode tasks, or they would wait behind actors holding every CPU
    per_actor = max(0.1, min(1.0, (cpus - 0.5) / count))
    return {"device": "cpu", "actors": count, "num_gpus": 0, "num_cpus": per_actor, "threads": 1}


def _run_dataset(ray, job, spec, store, shards, feature_cache, thumb_cache, run, on_progress, cancelled):
    import pyarrow as pa

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # progress goes through on_progress, as for the local engine
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    plan = plan_actors(ray.cluster_resources(), job.device, job.workers)
    run.meta["ray"] = {k: plan[k] for k in ("device", "actors", "num_gpus", "num_cpus")}
    tables = [
        pa.table(
            {
                "path": [f.path for f in shard.files],
                "size": pa.array([f.size for f in shard.files], pa.int64()),
                "mtime_ns": pa.array([f.mtime_ns for f in shard.files], pa.int64()),
                "shard": [shard.id] * len(shard.files),
            }
        )
        for shard in shards
    ]
    batch = job.batch_size or (64 if plan["device"] == "cuda" else 8)
    # Failures: Ray Data retries a map task whose worker died, and restarts a dead actor and retries its
    # batch (its defaults: max_retries=-1 for tasks, max_restarts=-1 and max_task_retries=-1 for actors).
    dataset = (
        ray.data.from_arrow(tables)
        .map_batches(
            ray_workers.decode_batch,
            fn_kwargs={"max_side": spec["max_side"]},
            # never more than a shard, so one shard's block is not merged with the next one's
            batch_size=min(_DECODE_BATCH, job.shard_size),
            batch_format="numpy",
            num_cpus=0.5,
        )
        .map_batches(
            ray_workers.EmbedActor,
            fn_constructor_kwargs={"spec": spec, "device": plan["device"], "threads": plan["threads"]},
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan["actors"]),
            num_gpus=plan["num_gpus"],
            num_cpus=plan["num_cpus"],
        )
    )
    total = sum(len(s.files) for s in shards)
    meter = RateMeter("features", total, on_progress)
    collector = _ShardCollector(store, shards, spec["model_id"], feature_cache, thumb_cache, run)
    meter.update(
        0, message=f"{len(shards)} shards on {plan['actors']} {plan['device']} worker(s)", force=True
    )
    done = 0
    for columns in _stream(dataset, cancelled):
        done += collector.add(columns)
        meter.update(done, message=f"{run.shards_computed}/{len(shards)} shards")
    meter.update(done, message=f"{run.shards_computed}/{len(shards)} shards", force=True)
    if collector.open_shards:
        raise RuntimeError(
            f"Ray returned no rows for {len(collector.open_shards)} shard(s); run again to finish"
        )


def _stream(dataset, cancelled: CancelFlag):
    """Batches of results; a reader thread waits on Ray so the cancel flag is seen within _POLL_SECONDS."""
    results: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    end = object()

    def read() -> None:
        iterator = dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1)
        try:
            for columns in iterator:
                while not stop.is_set():
                    try:
                        results.put(columns, timeout=_POLL_SECONDS)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return  # leaving the loop closes the iterator, which stops the streaming executor
            results.put(end)
        except BaseException as error:  # handed to the driver thread, which raises it
            results.put(error)

    reader = threading.Thread(target=read, name="imgclust-ray-results", daemon=True)
    reader.start()
    try:
        while True:
            if cancelled():
                raise Cancelled()
            try:
                item = results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class _ShardCollector:
    """Gathers result rows per shard; writes a shard (and its cache rows) the moment it is whole."""

    def __init__(self, store, shards, model_id, feature_cache, thumb_cache, run) -> None:
        self.store, self.run = store, run
        self.feature_cache, self.thumb_cache = feature_cache, thumb_cache
        self.shards = {s.id: s for s in shards}
        self.rows: dict[str, dict[str, tuple]] = {s.id: {} for s in shards}
        self.cache_key = None

    @property
    def open_shards(self) -> list[str]:
        return list(self.rows)

    def add(self, columns: dict) -> int:
        count = len(columns["path"])
        for i in range(count):
            shard_id = str(columns["shard"][i])
            if shard_id not in self.rows:
                continue  # a retried task's duplicate of a shard already written
            self.rows[shard_id][str(columns["path"][i])] = (
                bool(columns["ok"][i]),
                str(columns["reason"][i]),
                str(columns["key"][i]),
                columns["features"][i],
                bytes(columns["thumb128"][i]),
                bytes(columns["thumb256"][i]),
                str(columns["cache_key"][i]),
            )
            if len(self.rows[shard_id]) == len(self.shards[shard_id].files):
                self._finish(shard_id)
        return count

    def _finish(self, shard_id: str) -> None:
        shard, got = self.shards[shard_id], self.rows.pop(shard_id)
        ok = [f for f in shard.files if got[f.path][0]]
        keys = [got[f.path][2] for f in ok]
        dim = len(got[shard.files[0].path][3])
        features = (
            np.stack([got[f.path][3] for f in ok]).astype(np.float32)
            if ok
            else np.zeros((0, dim), np.float32)
        )
        skipped = [Skipped(f.path, got[f.path][1]) for f in shard.files if not got[f.path][0]]
        fstore.write_shard(self.store, shard, fstore.ShardRows([f.path for f in ok], keys, features, skipped))
        if self.feature_cache is not None and ok:
            self.feature_cache.put_many(keys, got[ok[0].path][6], features)
        if self.thumb_cache is not None and ok:
            self.thumb_cache.put_many(
                (got[f.path][2], {THUMB_SIZES[0]: got[f.path][4], THUMB_SIZES[1]: got[f.path][5]}) for f in ok
            )
        self.run.shards_computed += 1
        self.run.files_computed += len(shard.files)


def cache_run_folder(cache_dir: str | None, job: RayJob) -> Path:
    """Where `cluster --engine ray` keeps its shards until the cache holds them (so it can resume too)."""
    from .cache import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    text = "\0".join(
        [
            *map(str, job.inputs),
            "|",
            *job.include,
            "|",
            *job.exclude,
            "|",
            job.model_id,
            str(job.weights_path),
            str(job.layer),
            str(job.input_size),
        ]
    )
    return (
        root
        / "ray-runs"
        / hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=10).hexdigest()
    )


def fill_cache(job: RayJob, *, on_progress=no_progress, cancelled=never_cancelled) -> RayRun:
    """Compute on Ray every feature row a local run of job.inputs needs and put it in the local caches."""
    import shutil

    if not job.use_cache:
        raise ValueError("--engine ray hands its rows to the local run through the cache: drop --no-cache")
    folder = cache_run_folder(job.cache_dir, job)
    run = extract_to_store(job, folder, on_progress=on_progress, cancelled=cancelled, consolidate=False)
    shutil.rmtree(folder, ignore_errors=True)  # every row is in the cache now
    return run


def describe(run: RayRun) -> str:
    """One line for the terminal about what a run did."""
    counts = run.meta.get("counts", {})
    rate = run.files_computed / run.seconds if run.seconds > 0 else 0.0
    rows = f"{counts['rows']} feature rows, {counts['skipped']} skipped; " if "rows" in counts else ""
    return (
        f"{rows}shards: {run.shards_computed} computed on Ray, {run.shards_kept} kept from an earlier run, "
        f"{run.shards_from_cache} from the local cache (of {run.shards_total}); {run.seconds:.1f} s"
        + (f", {rate:.1f} images/s" if run.files_computed else "")
    )


__all__ = [
    "RAY_INSTALL",
    "RayJob",
    "RayRun",
    "RayUnavailable",
    "describe",
    "extract_to_store",
    "fill_cache",
    "import_ray",
    "model_options",
    "plan_actors",
    "scan_inputs",
]
