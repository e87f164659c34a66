"""The `imgclust` command: cluster folders into a session, query similar images, export, evaluate.

Exit codes: 0 ok, 2 bad arguments, 1 failure (one line on stderr; --debug shows the traceback),
130 interrupted. Heavy libraries load only inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from imgclust_desktop import __version__, cli_modes, cli_ray, cli_recut, cli_update
from imgclust_desktop.cli_common import BadArguments
from imgclust_desktop.core.cluster import CRITERIA, LINKAGES, METHODS  # numpy only: keeps --help fast

EPILOG = """\
examples:
  imgclust cluster ~/photos --out ~/photos-session
      cluster every image under ~/photos (default model, a cluster tree cut at an automatic level, UMAP map);
      writes session.json, clusters.csv, features.npy, montages/ and report.html into ~/photos-session
  imgclust cluster scans/ --out s --level 40
      start at the cluster-tree level nearest 40 groups; `imgclust recut s --finer` goes one level down
  imgclust cluster scans/ --out s --cluster kmeans --k-range 2:12 --criterion silhouette --seed 1
  imgclust cluster a/ b/ --out s --model pixels --cluster agglomerative --k 5 --embedding pca
  imgclust update s more-photos/
      add new images to session s in place (map, clusters and curation kept; undo with --undo)
  imgclust similar query.jpg --session s -k 12
  imgclust export s --to sorted/ --clusters 0,3 --mode copy --dry-run
  imgclust export --undo sorted/imgclust-export-20240101-120000.csv
  imgclust evaluate s --truth parent-folder --json
  imgclust models

Re-running `cluster` on the same files reuses cached features (see --cache-dir, --no-cache).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks and shows the defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet_default = action.default is None or action.default is False or action.default == []
        if action.option_strings and not quiet_default and action.default is not argparse.SUPPRESS:
            if "default" not in text:
                text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `imgclust` with its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not undo a --debug given before the subcommand.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="no progress")
    parser = argparse.ArgumentParser(
        prog="imgclust",
        description="Cluster folders of images by visual similarity with deep features; curate and export.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"imgclust {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    kw = {"parents": [common], "formatter_class": _Formatter, "epilog": EPILOG}
    devices = ("auto", "cpu", "cuda", "mps")

    run = commands.add_parser("cluster", help="cluster images into a session folder", **kw)
    add = run.add_argument
    add("inputs", nargs="*", metavar="INPUT", help="folders and/or image files (searched recursively)")
    add("--out", required=True, metavar="SESSION", help="session folder to write")
    add(
        "--features",
        metavar="FILE.npy|DIR",
        help="your own embeddings (N x D), or a folder with features.npy + paths.txt",
    )
    add("--paths", metavar="FILE.txt", help="with --features: one image path per row, same order")
    add("--model", metavar="ID", help="feature extractor, see `imgclust models` (default efficientnet-lite0)")
    add("--weights", metavar="FILE", help="local weights file for the model")
    add("--layer", help="network layer to take features from (CNN models)")
    add("--input-size", type=_positive_int, metavar="PX", help="network input side in pixels")
    add("--cluster", default="tree", choices=METHODS, metavar="METHOD", help=" | ".join(METHODS))
    k_group = run.add_mutually_exclusive_group()
    k_group.add_argument("--k", type=_positive_int, metavar="N", help="fixed number of clusters")
    k_group.add_argument(
        "--level", type=_positive_int, metavar="N", help="tree: start at the level nearest N groups (auto)"
    )
    k_group.add_argument("--k-range", type=_k_range, metavar="A:B", help="search k in A..B (default 2:25)")
    add("--criterion", default="silhouette", choices=CRITERIA, help="how k is chosen")
    add("--space", default="umap", choices=("umap", "reduced"), help="cluster in low-dim UMAP or PCA space")
    add("--min-cluster-size", type=_positive_int, metavar="N", help="HDBSCAN: smallest cluster (auto)")
    add("--eps", type=float, help="DBSCAN neighbourhood radius (auto)")
    add("--keep-noise", action="store_true", help="HDBSCAN: leave uncertain images unassigned (cluster -1)")
    add("--linkage", default="ward", choices=LINKAGES, help="agglomerative linkage")
    add("--max-d", type=float, metavar="H", help="agglomerative: cut the tree at this height")
    add("--embedding", default="umap", choices=("umap", "tsne", "pca"), help="2-D map method")
    add("--pca", type=_pca, default=50, metavar="N|F|none", help="PCA components, variance kept, or none")
    add("--seed", type=int, default=0, help="random seed")
    add("--device", default="auto", choices=devices, help="where the model runs")
    add("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    add("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)")
    add("--batch-size", type=_positive_int, metavar="N", help="images per model batch (auto)")
    add("--workers", type=_positive_int, metavar="N", help="decoding threads (auto)")
    add("--cache-dir", metavar="DIR", help="feature/thumbnail cache folder (user cache)")
    add("--no-cache", action="store_true", help="neither read nor write the caches")
    add("--no-report", action="store_true", help="skip montages and report.html")

    similar = commands.add_parser("similar", help="images of a session most similar to IMAGE", **kw)
    add = similar.add_argument
    add("image", metavar="IMAGE", help="an image of the session or any other image file")
    add("--session", required=True, metavar="SESSION", help="session folder made by `imgclust cluster`")
    add("-k", type=_positive_int, default=10, metavar="N", help="how many")
    add("--alpha", type=_fraction, metavar="A", help="instead of -k: all significantly similar at level A")
    add("--device", default="auto", choices=devices, help="where the model runs")
    add("--json", action="store_true", help="machine-readable output")

    export = commands.add_parser("export", help="copy/move/link clusters into folders; undo a move", **kw)
    add = export.add_argument
    add("session", nargs="?", metavar="SESSION", help="session folder made by `imgclust cluster`")
    add("--to", metavar="DIR", help="destination folder (files go to DIR/<cluster name>/)")
    add("--clusters", type=_cluster_ids, metavar="IDS", help="e.g. 0,3,noise (default: every cluster)")
    add("--mode", default="copy", choices=("copy", "move", "link", "symlink"), help="how files get there")
    add(
        "--name-pattern",
        default="{name}",
        metavar="P",
        help="{name} {stem} {ext} {cluster} {cluster_name} {n}",
    )
    add("--dry-run", action="store_true", help="print the plan, change nothing")
    add("--include-excluded", action="store_true", help="also export images marked excluded")
    add("--undo", metavar="MANIFEST", help="undo an earlier export from its manifest (.csv or .json)")

    evaluate = commands.add_parser("evaluate", help="compare clusters with known classes", **kw)
    add = evaluate.add_argument
    add("session", metavar="SESSION", help="session folder made by `imgclust cluster`")
    add("--truth", default="parent-folder", metavar="LEVEL", help="parent-folder | grandparent-folder")
    add("--keep-class", metavar="NAME", help="also report keep/drop figures for this class")
    add("--json", action="store_true", help="machine-readable output")

    models = commands.add_parser("models", help="list the feature extractors", **kw)
    models.add_argument("--json", action="store_true", help="machine-readable output")
    cli_modes.register(commands, **kw)
    cli_recut.register(commands, **kw)
    cli_update.register(commands, **kw)
    cli_ray.register(commands, **kw)  # after faces: `features`, and `cluster --engine ray`
    return parser


# ---- argument types: argparse turns their ValueError/ArgumentTypeError into exit code 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _k_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected A:B with whole numbers (like 2:25), not {text!r}"
        ) from None
    if not 2 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 2 <= A <= B, not {text!r}")
    return low, high


def _pca(text: str) -> int | float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if value.is_integer() and value >= 1:
        return int(value)
    if 0 < value < 1:
        return value
    raise argparse.ArgumentTypeError(
        f"expected a component count, a fraction in (0, 1) or none, not {text!r}"
    )


def _cluster_ids(text: str) -> list[int]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        if part.lower() == "noise":
            ids.append(-1)
        elif part:
            try:
                ids.append(int(part))
            except ValueError:
                raise argparse.ArgumentTypeError(f"cluster ids are whole numbers, not {part!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("no cluster ids given")
    return ids


# ---- progress


IMAGE_STAGES = ("scan", "features", "export", "undo export")


class TerminalProgress:
    """A tqdm bar per stage on a terminal; silent when stderr is not a TTY (logs, pipes, tests)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._stage = None

    def __call__(self, progress) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if progress.stage != self._stage:
            self.close()
            self._stage = progress.stage
            self._bar = tqdm(
                total=progress.total or None,
                desc=progress.stage,
                unit="img" if progress.stage in IMAGE_STAGES else "step",
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        bar = self._bar
        if progress.total and bar.total != progress.total:
            bar.total = progress.total
        bar.n = progress.done
        if progress.message:
            bar.set_postfix_str(progress.message, refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Interrupt:
    """First Ctrl-C asks the running stage to stop cleanly; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> None:
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nstopping… (Ctrl-C again to quit at once)", file=sys.stderr)

        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread (embedded use): keep the default behaviour
            pass


# ---- commands


def cmd_cluster(args, progress, cancelled) -> int:
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.cluster import ClusterParams
    from imgclust_desktop.core.models.registry import DEFAULT_MODEL, get_info
    from imgclust_desktop.core.progress import Progress

    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "session.json").exists())):
        raise BadArguments(f"--out {out} exists and is not a session folder; choose a new or empty folder")
    _check_feature_inputs(args)
    model_id = args.model or DEFAULT_MODEL
    try:
        get_info(model_id)
    except ValueError as exc:
        raise BadArguments(str(exc)) from None
    same_names = ("k", "criterion", "linkage", "max_d", "space", "min_cluster_size", "eps", "seed")
    params = ClusterParams(method=args.cluster, **{name: getattr(args, name) for name in same_names})
    if args.level is not None:
        if args.cluster != "tree":
            raise BadArguments("--level picks a level of the cluster tree: use it with --cluster tree")
        params.k = args.level
    params.assign_noise = not args.keep_noise
    if args.k_range:
        params.k_range = args.k_range
    same_names = ("layer", "embedding", "seed", "device", "cache_dir", "batch_size", "workers", "input_size")
    if args.features:
        session = _session_from_features(args, params, progress, cancelled)
    else:
        session = _session_from_images(args, params, model_id, same_names, progress, cancelled)
    progress(Progress("saving", 0, 1, message="montages and report" if not args.no_report else ""))
    session_io.save(session, out, report=not args.no_report)
    progress(Progress("saving", 1, 1))
    progress.close()
    sizes = session.sizes()
    noise = int((session.labels < 0).sum())
    score = session.scores.get("silhouette")
    print(
        f"{len(session.paths)} images -> {len(sizes)} clusters, {noise} unclustered, "
        f"{len(session.skipped)} skipped" + (f"; silhouette {score:.3f}" if isinstance(score, float) else "")
    )
    if session.tree is not None:
        levels = ", ".join(f"{k}{'*' if k == session.level else ''}" for k in session.tree.levels)
        print(f"cluster tree levels (groups): {levels}   (* = this one; `imgclust recut` changes it)")
    for cid, size in sorted(sizes.items())[:50]:
        medoid = session.clusters[cid].medoid_index
        example = os.path.basename(session.paths[medoid]) if medoid is not None else ""
        print(f"  {cid:>4}  {size:>6}  {session.name_of(cid)[:40]:<40}  {example}")
    if len(sizes) > 50:
        print(f"  … and {len(sizes) - 50} more clusters (clusters.csv lists every image)")
    for skipped in session.skipped[:10]:
        print(f"  skipped {skipped.path}: {skipped.reason}")
    if len(session.skipped) > 10:
        print(f"  … and {len(session.skipped) - 10} more skipped (listed in session.json)")
    missing = int(session.missing.sum())
    if missing:
        print(f"  {missing} path(s) not on disk: kept in the session, flagged missing")
    print(f"session written to {out}" + ("" if args.no_report else f" (open {out / 'report.html'})"))
    return 0


def _check_feature_inputs(args) -> None:
    """INPUT folders or --features, never both; --paths only with --features."""
    if args.features and args.inputs:
        raise BadArguments("give either INPUT folders/files or --features, not both")
    if not args.features and not args.inputs:
        raise BadArguments("give INPUT folders/files, or --features FILE.npy --paths FILE.txt")
    if args.paths and not args.features:
        raise BadArguments("--paths goes with --features (one image path per feature row)")
    if args.features and getattr(args, "engine", "local") == "ray":
        raise BadArguments("--engine ray computes features; --features brings them: use one of the two")
    if args.features and (args.model or args.weights or args.layer or args.input_size):
        raise BadArguments(
            "--model/--weights/--layer/--input-size do not apply to --features (no model runs)"
        )


def _session_from_features(args, params, progress, cancelled):
    from imgclust_desktop.core import embeddings

    request = embeddings.FeaturesRequest(
        features=args.features,
        paths=args.paths,
        embedding=args.embedding,
        cluster=params,
        pca_components=args.pca,
        seed=args.seed,
    )
    try:
        return embeddings.run(request, on_progress=progress, cancelled=cancelled)
    except embeddings.EmbeddingsError as exc:
        raise BadArguments(str(exc)) from None


def _session_from_images(args, params, model_id, same_names, progress, cancelled):
    from imgclust_desktop.core import pipeline

    request = pipeline.PipelineRequest(
        inputs=[os.path.abspath(os.path.expanduser(p)) for p in args.inputs],
        model_id=model_id,
        weights_path=args.weights,
        cluster=params,
        pca_components=args.pca,
        include=list(args.include),
        exclude=list(args.exclude),
        use_cache=not args.no_cache,
        **{name: getattr(args, name) for name in same_names},
    )
    if getattr(args, "engine", "local") == "ray":
        cli_ray.fill_cache_for(request, args, progress, cancelled)  # features on Ray, into the cache
    return pipeline.run(request, on_progress=progress, cancelled=cancelled)


def cmd_similar(args, progress, cancelled) -> int:
    from imgclust_desktop.core import pipeline
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.search import SimilarityIndex

    session = session_io.load(Path(args.session))
    image = os.path.abspath(os.path.expanduser(args.image))
    if image in session.paths:
        row = session.paths.index(image)
        vector, exclude = session.features[[row]], [row]
    else:
        if not os.path.isfile(image):
            raise BadArguments(f"{args.image}: no such image file")
        if session.model_id == "external":
            raise BadArguments(
                "this session's features came from a file (--features), so images outside it cannot be "
                "embedded the same way; give an image of the session"
            )
        vector = pipeline.features_for_images(
            session, [image], device=args.device, on_progress=progress, cancelled=cancelled
        )
        exclude = []
    index = SimilarityIndex(session.features)
    if args.alpha is not None:
        hits = [
            (i, s, p) for i, s, p in index.query_significant(vector, alpha=args.alpha) if i not in exclude
        ]
    else:
        hits = [(i, s, None) for i, s in index.query(vector, k=args.k, exclude=exclude)]
    progress.close()
    rows = [
        {
            "rank": r + 1,
            "path": session.paths[i],
            "similarity": round(float(s), 4),
            "cluster": int(session.labels[i]),
            "cluster_name": session.name_of(int(session.labels[i])),
            **({"p": float(p)} if p is not None else {}),
        }
        for r, (i, s, p) in enumerate(hits)
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    with_p = args.alpha is not None
    print(f"{'rank':>4}  {'similarity':>10}  " + (f"{'p':>9}  " if with_p else "") + f"{'cluster':>7}  path")
    for r in rows:
        p_value = f"{r['p']:>9.2e}  " if with_p else ""
        print(f"{r['rank']:>4}  {r['similarity']:>10.4f}  {p_value}{r['cluster']:>7}  {r['path']}")
    if not rows:
        print("no similar images" + (f" at alpha {args.alpha}" if args.alpha else ""))
    return 0


def cmd_export(args, progress, cancelled) -> int:
    from imgclust_desktop.core import export
    from imgclust_desktop.core import session as session_io

    if args.undo:
        if args.session or args.to:
            raise BadArguments("--undo MANIFEST takes no SESSION or --to")
        if not os.path.isfile(args.undo):
            raise BadArguments(f"--undo {args.undo}: no such manifest file")
        result = export.undo_export(args.undo, on_progress=progress, cancelled=cancelled)
        progress.close()
        print(f"undone: {result.restored} files; left alone: {len(result.skipped)}")
        for path, reason in result.skipped:
            print(f"  left {path}: {reason}")
        return 0 if not result.skipped else 1
    if not args.session or not args.to:
        raise BadArguments("export needs SESSION and --to DIR (or --undo MANIFEST)")
    session = session_io.load(Path(args.session))
    if args.clusters:
        known = set(session.sizes()) | {-1}
        unknown = [c for c in args.clusters if c not in known]
        if unknown:
            raise BadArguments(
                f"no cluster {', '.join(map(str, unknown))} in this session "
                f"(clusters: {', '.join(map(str, sorted(session.sizes())))}, or noise)"
            )
    plan = export.plan_export(
        session,
        Path(args.to).expanduser(),
        clusters=args.clusters,
        mode=args.mode,
        name_pattern=args.name_pattern,
        include_excluded=args.include_excluded,
    )
    if args.dry_run:
        for src, dst in plan:
            print(f"{args.mode}: {src} -> {dst}")
        print(f"dry run: {len(plan)} files would be {_past(args.mode)} into {plan.dest}; nothing was changed")
        return 0
    manifest = export.run_export(plan, on_progress=progress, cancelled=cancelled)
    progress.close()
    print(f"{manifest.done} files {_past(args.mode)} into {plan.dest}; {len(manifest.failed)} failed")
    for entry in manifest.failed[:20]:
        print(f"  failed {entry.source}: {entry.reason}", file=sys.stderr)
    print(
        f"manifest: {manifest.csv_path}"
        + (" (undo with: imgclust export --undo MANIFEST)" if manifest.done else "")
    )
    if manifest.cancelled:
        print("export interrupted; finished files are listed in the manifest", file=sys.stderr)
        return 130
    return 0 if not manifest.failed else 1


def _past(mode: str) -> str:
    return {"copy": "copied", "move": "moved", "link": "hard-linked", "symlink": "symlinked"}[mode]


def cmd_evaluate(args, progress, cancelled) -> int:
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.evaluate import evaluate, truth_from_paths
    from imgclust_desktop.core.session import _jsonable

    session = session_io.load(Path(args.session))
    try:
        truth = truth_from_paths(session.paths, args.truth)
    except ValueError as exc:
        raise BadArguments(str(exc)) from None
    result = evaluate(session.labels, truth, keep_class=args.keep_class)
    if args.json:
        print(json.dumps(_jsonable(result), indent=1))
        return 0
    print(f"{'metric':<8} {'value':>8}")
    for name in ("acc", "nmi", "ari"):
        value = result.get(name)
        print(
            f"{name.upper():<8} {value:>8.4f}"
            if isinstance(value, (int, float))
            else f"{name.upper():<8} {'–':>8}"
        )
    print(
        f"({len(session.paths)} images, {len(set(truth))} classes from {args.truth}, "
        f"{len(session.sizes())} clusters)"
    )
    return 0


def cmd_models(args, progress, cancelled) -> int:
    from imgclust_desktop.core.models.registry import DEFAULT_MODEL, list_models

    models = list_models()
    if args.json:
        print(json.dumps([m.__dict__ for m in models], indent=1))
        return 0
    print(f"{'id':<22} {'family':<13} {'dim':>5} {'input':>5}  {'weights':<10} licence")
    for m in models:
        weights = "download" if m.needs_download else "ready"
        mark = " (default)" if m.id == DEFAULT_MODEL else ""
        print(f"{m.id:<22} {m.family:<13} {m.dim:>5} {m.input_size:>5}  {weights:<10} {m.licence}{mark}")
    return 0


COMMANDS = {
    "cluster": cmd_cluster,
    "similar": cmd_similar,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
    "models": cmd_models,
    **cli_modes.COMMANDS,
    **cli_recut.COMMANDS,
    **cli_update.COMMANDS,
    **cli_ray.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `imgclust`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    progress = TerminalProgress(enabled=sys.stderr.isatty() and not getattr(args, "quiet", False))
    interrupt = Interrupt()
    interrupt.install()
    try:
        return COMMANDS[args.command](args, progress, interrupt)
    except BadArguments as exc:
        progress.close()
        parser.exit(2, f"imgclust {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        progress.close()
        print("imgclust: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        progress.close()
        from imgclust_desktop.core.progress import Cancelled

        if isinstance(exc, Cancelled):
            print("imgclust: cancelled", file=sys.stderr)
            return 130
        if debug:
            traceback.print_exc()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"imgclust: error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
