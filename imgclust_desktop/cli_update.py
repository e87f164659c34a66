"""`imgclust update SESSION [INPUT...]`: add new images to a session in place, keeping map and curation.

`register(subparsers)` adds the subcommand to the parser cli.py builds; `COMMANDS` maps its name to the
function cli.main calls as `COMMANDS[name](args, progress, cancelled)`.
"""

from __future__ import annotations

import os
from pathlib import Path

LISTED = 10  # files listed by name per category; the rest are counted


def register(subparsers, **parser_options) -> None:
    """Add the `update` subcommand."""
    options = {k: v for k, v in parser_options.items() if k != "epilog"}
    update = subparsers.add_parser(
        "update",
        help="add new images to a session in place; existing images keep their place and cluster",
        description="Rescan the session's folders (and any INPUT given), compute features for new and "
        "edited files with the session's own model, place new images among their nearest neighbours on "
        "the existing map, let each join the cluster it clearly belongs to and gather the rest into new "
        "clusters. Names, moves and exclusions stay. Files that disappeared are marked missing and "
        "listed. The previous state is kept in SESSION/history/ (undo with --undo).",
        **options,
    )
    add = update.add_argument
    add("session", metavar="SESSION", help="session folder made by `imgclust cluster`")
    add("inputs", nargs="*", metavar="INPUT", help="more folders or image files to add to the session")
    add("--undo", action="store_true", help="put the session back as it was before the last update")
    add(
        "--relocate",
        metavar="FOLDER",
        help="the images moved (new drive letter, mount point or folder name): find them under FOLDER, "
        "check sizes and a sample of contents, then update",
    )
    add("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where the model runs")
    add("--cache-dir", metavar="DIR", help="feature/thumbnail cache folder (default: the session's)")
    add("--no-report", action="store_true", help="skip montages and report.html")


def cmd_update(args, progress, cancelled) -> int:
    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core import update as update_mod
    from imgclust_desktop.core.history import HistoryError
    from imgclust_desktop.core.progress import Progress

    folder = Path(args.session).expanduser()
    if args.undo:
        if args.inputs:
            raise BadArguments("--undo takes no INPUT")
        try:
            snapshot = update_mod.undo_update(folder)
        except HistoryError as exc:
            raise BadArguments(str(exc)) from None
        print(f"session {folder} put back as it was before the update of {snapshot.name}")
        return 0
    for given in args.inputs:
        if not os.path.exists(os.path.expanduser(given)):
            raise BadArguments(f"{given}: no such file or folder")
    session = session_io.load(folder)
    identities = None
    if args.relocate:
        session, identities = _relocate(session, folder, args, progress, cancelled)
    result = update_mod.update(
        session, args.inputs, device=args.device, cache_dir=args.cache_dir, identities=identities,
        on_progress=progress, cancelled=cancelled,
    )  # fmt: skip
    progress(Progress("saving", 0, 1))
    update_mod.save_update(result, folder, report=not args.no_report)
    progress(Progress("saving", 1, 1))
    progress.close()
    updated = result.session
    print(f"update: {result.summary()}")
    for cid in result.new_clusters:
        print(f"  new cluster {cid:>4}  {updated.name_of(cid)}  {int((updated.labels == cid).sum())} images")
    _list("missing", [updated.paths[r] for r in result.missing])
    _list("reattached", [updated.paths[r] for r in result.reattached])
    _list("changed", [updated.paths[r] for r in result.changed])
    _list("skipped", [f"{s.path}: {s.reason}" for s in result.skipped])
    for warning in result.warnings:
        print(f"  warning: {warning}")
    print(f"session {folder} updated in {result.seconds:.1f} s (undo with: imgclust update {folder} --undo)")
    return 0


def _relocate(session, folder: Path, args, progress, cancelled):
    """The session with its paths moved under --relocate FOLDER, and its recorded identities likewise."""
    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import relocate as relocate_mod
    from imgclust_desktop.core.update import read_identities

    if not os.path.isdir(os.path.expanduser(args.relocate)):
        raise BadArguments(f"--relocate {args.relocate}: no such folder")
    found = relocate_mod.find_relocation(
        session, args.relocate, device=args.device, on_progress=progress, cancelled=cancelled
    )
    if found is None:
        raise BadArguments(f"the session's images are not under {args.relocate} (checked a sample)")
    if not found.verified:
        bad = (found.size_mismatch + found.content_mismatch)[:3]
        raise BadArguments(
            f"files under {args.relocate} have the session's names but not its images "
            f"(size or content differs: {'; '.join(bad)}); nothing was changed"
        )
    print(
        f"relocated {found.old_prefix} -> {found.new_prefix}: {found.found:.0%} of a sample found, "
        f"{found.size_checked} sizes and {found.content_checked} contents checked"
    )
    identities = {found.swap(p): v for p, v in read_identities(folder).items()}
    return relocate_mod.relocate(session, found), identities


def _list(what: str, items: list[str]) -> None:
    for item in items[:LISTED]:
        print(f"  {what} {item}")
    if len(items) > LISTED:
        print(f"  … and {len(items) - LISTED} more {what} (listed in session.json)")


COMMANDS = {"update": cmd_update}
