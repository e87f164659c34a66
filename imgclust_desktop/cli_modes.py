"""`imgclust faces` (cluster people by their faces) and `imgclust pixels` (segment one image by colour).

`register(subparsers)` adds both to the `imgclust` parser that cli.py builds; `COMMANDS` maps their names
to the functions cli.main calls as `COMMANDS[name](args, progress, cancelled)`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers, **parser_options) -> None:
    """Add the `faces` and `pixels` subcommands (call after the `cluster` subcommand exists)."""
    # cli.py passes parents (--debug/--quiet), formatter_class and its cluster-examples epilog.
    options = {k: v for k, v in parser_options.items() if k not in ("parents", "epilog")}
    cluster = subparsers.choices.get("cluster")
    # `faces` takes every `cluster` option (it runs the same pipeline on the crops), so share them.
    faces = subparsers.add_parser(
        "faces",
        help="cluster the faces found in images into a session (export by person gives the photos)",
        description="Detect faces in every image, cut out aligned crops into SESSION/faces/, and cluster "
        "the crops like `imgclust cluster`. Images without a face are listed, not errors.",
        parents=[cluster] if cluster is not None else [],
        add_help=cluster is None,
        **options,
    )
    if cluster is None:
        faces.add_argument("inputs", nargs="+", metavar="INPUT", help="folders and/or image files")
        faces.add_argument("--out", required=True, metavar="SESSION", help="session folder to write")
    faces.add_argument(
        "--crop-size", type=_crop_size, default=160, metavar="PX", help="side of the face crops"
    )
    faces.add_argument("--detector", default="haar", choices=("haar", "lbp"), help="face detector")
    faces.set_defaults(func=cmd_faces)

    pixels = subparsers.add_parser(
        "pixels",
        help="segment one image by clustering its pixel colours; writes the class map as PNG",
        description="Cluster the colours of IMAGE into k classes with k-means and write a PNG where each "
        "pixel has its class's colour, plus a legend PNG with each class's area share.",
        parents=parser_options.get("parents", []),
        **options,
    )
    add = pixels.add_argument
    add("image", metavar="IMAGE", help="the image to segment")
    k_group = pixels.add_mutually_exclusive_group(required=True)
    k_group.add_argument("-k", type=_k, metavar="N", help="number of colour classes")
    k_group.add_argument("--auto", action="store_true", help="choose k by silhouette (see --k-range)")
    add("--k-range", type=_k_range, default="2:10", metavar="A:B", help="k tried by --auto")
    add("--out", required=True, metavar="PNG", help="class map to write (a new file)")
    add("--legend", metavar="PNG", help="legend image (default: OUT with -legend before .png)")
    add("--seed", type=int, default=0, help="random seed")
    add("--json", action="store_true", help="print the classes as JSON")
    pixels.set_defaults(func=cmd_pixels)


def _k(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"k must be between 1 and 256, not {text}")
    return value


def _crop_size(text: str) -> int:
    value = int(text)
    if not 32 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"crop size must be between 32 and 1024 pixels, not {text}")
    return value


def _k_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected A:B with whole numbers (like 2:10), not {text!r}"
        ) from None
    if not 2 <= low <= high <= 256:
        raise argparse.ArgumentTypeError(f"need 2 <= A <= B <= 256, not {text!r}")
    return low, high


def cmd_faces(args, progress, cancelled) -> int:
    """Crops into OUT/faces/, then the `cluster` pipeline on them; params["faces"] maps crops to photos."""
    import dataclasses

    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import faces as faces_mod
    from imgclust_desktop.core import pipeline
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.cluster import ClusterParams
    from imgclust_desktop.core.models.registry import DEFAULT_MODEL, get_info
    from imgclust_desktop.core.progress import Progress
    from imgclust_desktop.core.sources import Skipped

    out = Path(args.out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "session.json").exists())):
        raise BadArguments(f"--out {out} exists and is not a session folder; choose a new or empty folder")
    model_id = getattr(args, "model", None) or DEFAULT_MODEL
    try:
        get_info(model_id)
    except ValueError as exc:
        raise BadArguments(str(exc)) from None
    inputs = [os.path.abspath(os.path.expanduser(p)) for p in args.inputs]
    try:
        extraction = faces_mod.extract_face_crops(
            inputs,
            out / "faces",
            include=list(getattr(args, "include", [])),
            exclude=list(getattr(args, "exclude", [])),
            detector=args.detector,
            crop_size=args.crop_size,
            on_progress=progress,
            cancelled=cancelled,
        )
    except faces_mod.FacesError as exc:
        raise BadArguments(str(exc)) from None
    progress.close()
    print(
        f"{extraction.sources} images: {len(extraction.crops)} faces, {len(extraction.no_face)} without a face, "
        f"{len(extraction.skipped)} unreadable"
    )
    for path in extraction.no_face[:10]:
        print(f"  no face: {path}")
    if len(extraction.crops) < 3:
        print(f"clustering needs at least 3 faces; crops and faces.csv are in {extraction.folder}")
        return 1
    same = ("k", "criterion", "linkage", "max_d", "space", "min_cluster_size", "eps", "seed")
    params = ClusterParams(method=args.cluster, **{name: getattr(args, name) for name in same})
    params.assign_noise = not getattr(args, "keep_noise", False)
    if args.k_range:
        params.k_range = args.k_range
    same = ("layer", "embedding", "seed", "device", "cache_dir", "batch_size", "workers", "input_size")
    request = pipeline.PipelineRequest(
        inputs=[str(extraction.folder)],
        model_id=model_id,
        weights_path=args.weights,
        cluster=params,
        pca_components=args.pca,
        exclude=[faces_mod.FACES_CSV],
        use_cache=not args.no_cache,
        **{name: getattr(args, name) for name in same},
    )
    session = pipeline.run(request, on_progress=progress, cancelled=cancelled)
    session.params["faces"] = faces_mod.face_params(extraction, args.detector)
    session.inputs = inputs
    no_face = [Skipped(p, faces_mod.NO_FACE_REASON) for p in extraction.no_face]
    session = dataclasses.replace(session, skipped=list(extraction.skipped) + no_face + list(session.skipped))
    progress(Progress("saving", 0, 1))
    session_io.save(session, out, report=not args.no_report)
    progress(Progress("saving", 1, 1))
    progress.close()
    people = faces_mod.source_paths_for(session)
    print(
        f"{len(session.paths)} faces -> {len(session.sizes())} clusters ({int((session.labels < 0).sum())} unclustered)"
    )
    for cid, sources in sorted(people.items()):
        if cid >= 0:
            print(f"  {cid:>4}  {len(sources):>5} photos  e.g. {os.path.basename(sources[0])}")
    print(f"session written to {out}; export by person with the GUI or faces.plan_source_export")
    return 0


def cmd_pixels(args, progress, cancelled) -> int:
    """Segment one image by colour; writes the class map PNG and its legend PNG (never over a file)."""
    import json

    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import pixels
    from imgclust_desktop.core.decode import DecodeError

    out = Path(args.out).expanduser()
    legend = Path(args.legend).expanduser() if args.legend else out.with_name(out.stem + "-legend.png")
    if out.suffix.lower() != ".png":
        raise BadArguments(f"--out {out}: the class map is written as PNG, so name it *.png")
    for target in (out, legend):
        if target.exists():
            raise BadArguments(f"{target} already exists; choose a new file name (nothing was overwritten)")
        if not target.parent.is_dir():
            raise BadArguments(f"{target.parent} is not a folder")
    if not os.path.isfile(args.image):
        raise BadArguments(f"{args.image}: no such image file")
    try:
        image = pixels.load_image(args.image)
    except DecodeError as exc:
        raise BadArguments(f"{args.image}: {exc}") from None
    result = pixels.cluster_pixels(
        image,
        None if args.auto else args.k,
        k_range=args.k_range,
        seed=args.seed,
        on_progress=progress,
        cancelled=cancelled,
    )
    pixels.save_class_map(result, out, legend_path=legend)
    progress.close()
    rows = pixels.legend_rows(result)
    if args.json:
        print(
            json.dumps(
                {
                    "k": result.k,
                    "k_curve": result.k_curve,
                    "classes": [{"class": c, "colour": h, "share": round(s, 6)} for c, h, s in rows],
                },
                indent=1,
            )
        )
        return 0
    height, width = image.shape[:2]
    how = f"chosen by silhouette over {args.k_range[0]}:{args.k_range[1]}" if args.auto else "given"
    print(f"{width} x {height} pixels -> {result.k} colour classes (k {how}) in {result.seconds:.1f} s")
    for cls, hex_colour, share in rows:
        print(f"  class {cls:>3}  {hex_colour}  {share * 100:6.2f}%")
    print(f"class map: {out}\nlegend: {legend}")
    return 0


COMMANDS = {"faces": cmd_faces, "pixels": cmd_pixels}
