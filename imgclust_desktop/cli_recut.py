"""`imgclust recut`: cut a saved session's cluster tree at another level, from the stored tree alone.

No features are read, no map or model work is done: the tree (tree.npz and hierarchy.csv) gives every
level, and the medoid of every group of its stored levels (a level between them reads only the features of
its new groups). The person's curation carries over where it still applies (see core/recut.py); where it
cannot, recut says what would be lost and changes nothing unless --force is given.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers, **parser_options) -> None:
    """Add the `recut` subcommand to the `imgclust` parser."""
    options = {k: v for k, v in parser_options.items() if k != "epilog"}
    recut = subparsers.add_parser(
        "recut",
        help="show the session at another level of its cluster tree (fewer or more groups)",
        **options,
    )
    add = recut.add_argument
    add("session", metavar="SESSION", help="session folder made by `imgclust cluster` (default method)")
    which = recut.add_mutually_exclusive_group(required=True)
    which.add_argument("--k", type=int, metavar="N", help="the level nearest N groups")
    which.add_argument("--finer", action="store_true", help="the next stored level with more groups")
    which.add_argument("--coarser", action="store_true", help="the next stored level with fewer groups")
    which.add_argument("--default", action="store_true", help="the automatically chosen level")
    add("--force", action="store_true", help="re-cut even if some of your edits cannot carry over")
    add("--report", action="store_true", help="also redraw the montages and report.html (slower)")


def cmd_recut(args, progress, cancelled) -> int:
    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.recut import RecutError, apply_recut, plan_recut

    folder = Path(args.session).expanduser()
    try:
        session = session_io.load(folder, mmap=True)
    except session_io.SessionError as exc:
        raise BadArguments(str(exc)) from None
    tree = session.tree
    if tree is None:
        raise BadArguments(f"{folder} has no cluster tree: it was made with `--cluster` other than tree")
    current = session.level if session.level is not None else tree.default_k
    if args.default:
        k = tree.default_k
    elif args.finer:
        k = tree.finer(current)
    elif args.coarser:
        k = tree.coarser(current)
    else:
        if args.k < 1:
            raise BadArguments("--k must be at least 1")
        k = tree.clamp(args.k)
    try:
        plan = plan_recut(session, k)
    except RecutError as exc:
        raise BadArguments(str(exc)) from None
    for line in plan.warnings:
        print(f"  warning: {line}")
    if plan.warnings and not args.force:
        print("nothing changed: run again with --force to re-cut anyway")
        return 1
    apply_recut(session, plan)
    session_io.save(session, folder, report=args.report, write_features=False, write_tree=False)
    levels = ", ".join(f"{v}{'*' if v == k else ''}" for v in tree.levels)
    print(f"{folder}: {current} -> {len(session.cluster_ids())} clusters (tree levels: {levels})")
    for line in plan.kept:
        print(f"  kept: {line}")
    if not args.report:
        print("  montages and report.html still show the previous level (--report redraws them)")
    return 0


COMMANDS = {"recut": cmd_recut}
