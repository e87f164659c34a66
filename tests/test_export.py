"""Export: plan first, never overwrite, safe names, copy/move/link/symlink, manifest and undo."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_session import make_real_session

from imgclust_desktop.core import export
from imgclust_desktop.core.export import plan_export, run_export, safe_name, undo_export


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def session(tmp_path):
    s = make_real_session(tmp_path, per_group=4)
    s.rename(0, "Red stripes")
    # Two files with the same name in one cluster: group1/img01.png joins cluster 0 (group0/img00 is noise).
    s.assign([s.paths.index(str(tmp_path / "images" / "group1" / "img01.png"))], 0)
    return s


def test_plan_resolves_collisions_and_touches_nothing(session, tmp_path):
    dest = tmp_path / "out"
    (dest / "Red stripes").mkdir(parents=True)
    (dest / "Red stripes" / "img01.png").write_bytes(b"already here")
    before = snapshot(tmp_path)
    plan = plan_export(session, dest)
    assert snapshot(tmp_path) == before
    chosen = np.flatnonzero(session.labels >= 0)
    assert [src for src, _ in plan] == [session.paths[i] for i in chosen]
    destinations = [dst for _, dst in plan]
    assert len(set(destinations)) == len(destinations)
    red = sorted(os.path.basename(d) for d in destinations if os.path.dirname(d) == str(dest / "Red stripes"))
    # img01.png exists in DEST already, and comes from two source folders.
    assert red == ["img01 (2).png", "img01 (3).png", "img02.png", "img03.png"]
    assert {os.path.dirname(d) for d in destinations} == {
        str(dest / "Red stripes"),
        str(dest / "group 1"),
        str(dest / "group 2"),
    }


def test_plan_by_cluster_and_rows_and_excluded(session, tmp_path):
    session.set_excluded([int(np.flatnonzero(session.labels == 2)[0])], True)
    plan = plan_export(session, tmp_path / "out", clusters=[2])
    assert len(plan) == session.sizes()[2] - 1
    assert (
        len(plan_export(session, tmp_path / "out", clusters=[2], include_excluded=True)) == session.sizes()[2]
    )
    assert [src for src, _ in plan_export(session, tmp_path / "out", indices=[5, 6])] == session.paths[5:7]
    noise = plan_export(session, tmp_path / "out", clusters=[-1])
    assert len(noise) == 1 and os.path.basename(os.path.dirname(noise[0][1])) == "noise"
    renamed = plan_export(session, tmp_path / "out", clusters=[2], name_pattern="{cluster}_{n:03d}{ext}")
    assert os.path.basename(renamed[0][1]) == "2_001.png"
    with pytest.raises(ValueError, match="mode"):
        plan_export(session, tmp_path / "out", mode="teleport")


@pytest.mark.parametrize(
    "name",
    [
        "../../escape",
        "/etc/passwd",
        "..",
        "",
        "CON",
        "nul.txt",
        "a\x00b\nc\td",
        "C:\\Windows",
        "x" * 400,
        " . ",
    ],
)
def test_malicious_cluster_names_stay_inside_dest(session, tmp_path, name):
    session.rename(2, name)
    dest = tmp_path / "out"
    manifest = run_export(plan_export(session, dest, clusters=[2]))
    assert manifest.done == session.sizes()[2]
    for entry in manifest.entries:
        folder = Path(entry.destination).parent
        assert folder.parent == dest, folder
        assert folder.name.split(".")[0].upper() not in {"CON", "NUL"}
        assert all(ord(c) >= 32 for c in folder.name) and not folder.name.startswith(".")
        assert len(folder.name.encode()) <= export.MAX_NAME_BYTES
    assert not (tmp_path / "escape").exists() and not list(tmp_path.parent.glob("escape"))


def test_safe_name_keeps_the_extension_when_truncating():
    long = safe_name("é" * 300 + ".jpeg", "x", keep_extension=True)
    assert long.endswith(".jpeg") and len(long.encode()) <= export.MAX_NAME_BYTES
    assert safe_name("\u202egnp.exe", "x") == "_gnp.exe"  # right-to-left override cannot disguise a name


def test_copy_keeps_sources_contents_and_times_and_writes_a_manifest(session, tmp_path):
    sources_before = snapshot(tmp_path / "images")
    manifest = run_export(plan_export(session, tmp_path / "out"))
    assert snapshot(tmp_path / "images") == sources_before
    assert manifest.done == len(manifest.entries) == int(np.sum(session.labels >= 0))
    for entry in manifest.entries:
        assert Path(entry.destination).read_bytes() == Path(entry.source).read_bytes()
        assert os.stat(entry.destination).st_mtime_ns == os.stat(entry.source).st_mtime_ns
    document = json.loads(manifest.json_path.read_text())
    assert document["mode"] == "copy" and document["done"] == manifest.done
    assert export.read_manifest(manifest.csv_path)[1] == manifest.entries
    assert not list((tmp_path / "out").rglob(export.PARTIAL_PREFIX + "*"))
    # A second export into the same place never overwrites: every file gets a numbered twin.
    first_copies = snapshot(tmp_path / "out")
    again = run_export(plan_export(session, tmp_path / "out"))
    assert again.done == manifest.done
    assert not {e.destination for e in again.entries} & {e.destination for e in manifest.entries}
    assert all(first_copies[k] == v for k, v in snapshot(tmp_path / "out").items() if k in first_copies)
    assert undo_export(again.csv_path).restored == again.done
    assert undo_export(manifest.json_path).restored == manifest.done
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        manifest.csv_path.name,
        manifest.json_path.name,
        again.csv_path.name,
        again.json_path.name,
    }


@pytest.mark.parametrize("cross_device", [False, True])
def test_move_and_undo_restore_every_file(session, tmp_path, monkeypatch, cross_device):
    if cross_device:  # another drive: os.link fails, so move goes through the verified copy
        real_link = os.link

        def link(src, dst, **kwargs):
            if export.PARTIAL_PREFIX in os.path.basename(src):
                return real_link(src, dst, **kwargs)
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(export.os, "link", link)
    sources_before = snapshot(tmp_path / "images")
    manifest = run_export(plan_export(session, tmp_path / "out", mode="move"))
    moved = [e.source for e in manifest.entries]
    assert moved and not any(os.path.exists(p) for p in moved)
    assert all(os.path.isfile(e.destination) for e in manifest.entries)
    result = undo_export(manifest.csv_path)
    assert result.restored == len(moved) and not result.skipped
    assert snapshot(tmp_path / "images") == sources_before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [manifest.csv_path.name, manifest.json_path.name]
    ), "emptied cluster folders are removed"


def test_undo_refuses_to_overwrite_a_new_file_at_the_source(session, tmp_path):
    manifest = run_export(plan_export(session, tmp_path / "out", clusters=[2], mode="move"))
    first = manifest.entries[0]
    Path(first.source).write_bytes(b"a new file the person made")
    result = undo_export(manifest.csv_path)
    assert result.restored == len(manifest.entries) - 1
    assert result.skipped[0][0] == first.destination and "not overwritten" in result.skipped[0][1]
    assert Path(first.source).read_bytes() == b"a new file the person made"
    assert os.path.isfile(first.destination)


def test_link_and_symlink(session, tmp_path):
    hard = run_export(plan_export(session, tmp_path / "hard", clusters=[2], mode="link"))
    assert hard.done and all(os.path.samefile(e.source, e.destination) for e in hard.entries)
    soft = run_export(plan_export(session, tmp_path / "soft", clusters=[2], mode="symlink"))
    for e in soft.entries:
        assert os.path.islink(e.destination) and os.readlink(e.destination) == e.source
    assert undo_export(hard.csv_path).restored == hard.done
    assert undo_export(soft.csv_path).restored == soft.done
    assert all(os.path.isfile(e.source) for e in soft.entries + hard.entries)


def test_a_file_appearing_after_planning_is_not_overwritten(session, tmp_path):
    plan = plan_export(session, tmp_path / "out", clusters=[2])
    src, dst = plan[0]
    os.makedirs(os.path.dirname(dst))
    Path(dst).write_bytes(b"arrived meanwhile")
    manifest = run_export(plan)
    assert Path(dst).read_bytes() == b"arrived meanwhile"
    assert manifest.entries[0].destination.endswith(" (2).png")
    assert Path(manifest.entries[0].destination).read_bytes() == Path(src).read_bytes()


def test_cancel_stops_between_files_and_the_partial_export_can_be_undone(session, tmp_path):
    sources_before = snapshot(tmp_path / "images")
    calls, checks = [], []

    def cancelled() -> bool:
        checks.append(1)
        return len(checks) > 4

    manifest = run_export(
        plan_export(session, tmp_path / "out", mode="move"), cancelled=cancelled, on_progress=calls.append
    )
    assert manifest.cancelled and manifest.done == 4 < int(np.sum(session.labels >= 0))
    assert calls[-1].stage == "export"
    assert json.loads(manifest.json_path.read_text())["cancelled"] is True
    undo_export(manifest.csv_path)
    assert snapshot(tmp_path / "images") == sources_before


def test_missing_source_is_reported_not_fatal(session, tmp_path):
    plan = plan_export(session, tmp_path / "out", clusters=[2])
    shutil.move(plan[0][0], tmp_path / "elsewhere.png")
    manifest = run_export(plan)
    assert manifest.failed[0].reason == "the source file is gone"
    assert manifest.done == len(plan) - 1


def test_manifest_cut_short_by_a_kill_is_still_readable(session, tmp_path):
    manifest = run_export(plan_export(session, tmp_path / "out", clusters=[2], mode="move"))
    text = manifest.csv_path.read_text()
    manifest.csv_path.write_text(text + "move,done,/half/a/line")
    manifest.json_path.unlink()
    assert undo_export(manifest.csv_path).restored == manifest.done
