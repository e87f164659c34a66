"""rows.npz: the CSV columns (and session.json's row lists) in binary, used only while those files are
byte for byte the ones it mirrors: known unchanged by their stat key, or checked by their digest."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from tree_support import make_tree_session

from imgclust_desktop.core import row_cache
from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.recut import apply_recut, plan_recut
from imgclust_desktop.core.row_cache import CACHE_NAME


@pytest.fixture
def folder(tmp_path) -> Path:
    """A saved tree session (two themes of kinds; some rows moved to noise, some duplicates)."""
    session = make_tree_session(themes=3, kinds=3, per_kind=8, seed=3)
    session.outlier_score = np.linspace(0, 1, len(session.paths)).astype(np.float32)
    session.duplicate_group[:4] = [0, 0, 1, 1]
    session.assign([5, 6], -1)
    out = tmp_path / "session"
    session_io.save(session, out, report=False)
    return out


def read_columns(path: Path) -> dict[str, list[str]]:
    """A CSV's columns as another tool reads them (the csv module, nothing of ours)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {name: [r[name] for r in rows] for name in rows[0]}


def forbid_parsing(monkeypatch) -> None:
    def parse(*args, **kwargs):
        raise AssertionError("the CSV was parsed although rows.npz matched it")

    monkeypatch.setattr(session_io, "parse_clusters_csv", parse)
    monkeypatch.setattr(session_io, "parse_hierarchy_leaves", parse)


def edit_cell(path: Path, row: int, column: str, value: str) -> None:
    """Change one cell by hand, keeping the file's size and mtime (as a careful script or a copy back might)."""
    before = path.stat()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows[row + 1][rows[0].index(column)]) == len(value)
    rows[row + 1][rows[0].index(column)] = value
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_saved_session_loads_its_rows_from_the_cache_and_they_are_the_csvs(folder, monkeypatch):
    forbid_parsing(monkeypatch)
    session = session_io.load(folder)
    table = read_columns(folder / "clusters.csv")
    assert session.paths == table["path"]
    np.testing.assert_array_equal(session.labels, np.array(table["cluster"], np.int64))
    np.testing.assert_array_equal(session.coords[:, 0], np.array(table["x"], np.float64).astype(np.float32))
    np.testing.assert_array_equal(session.coords[:, 1], np.array(table["y"], np.float64).astype(np.float32))
    np.testing.assert_array_equal(session.outlier_score, np.array(table["outlier_score"], np.float32))
    np.testing.assert_array_equal(session.duplicate_group, np.array(table["duplicate_group"], np.int64))
    assert session.labels.dtype == np.int64 and session.coords.dtype == np.float32
    hierarchy = read_columns(folder / "hierarchy.csv")
    np.testing.assert_array_equal(session.tree.leaf_of, np.array(hierarchy[f"k{session.tree.n_leaves}"], int))


def test_a_csv_edited_by_hand_is_parsed_and_the_stale_cache_is_not_trusted(folder):
    # Same size, same mtime: only the bytes tell the edit apart.
    labels = read_columns(folder / "clusters.csv")["cluster"]
    row = next(i for i, c in enumerate(labels) if len(c) == 1 and c not in ("0", "-1"))
    edit_cell(folder / "clusters.csv", row, "cluster", "0")
    leaves = read_columns(folder / "hierarchy.csv")
    finest = [c for c in leaves if c != "path"][-1]
    other = next(v for v in leaves[finest] if len(v) == len(leaves[finest][row]) and v != leaves[finest][row])
    edit_cell(folder / "hierarchy.csv", row, finest, other)
    session = session_io.load(folder)
    assert session.labels[row] == 0
    assert session.tree.leaf_of[row] == int(other)


def test_a_cache_from_another_folder_or_a_damaged_one_is_ignored(folder, tmp_path):
    other = make_tree_session(themes=2, kinds=2, per_kind=9, seed=8)
    session_io.save(other, tmp_path / "other", report=False)
    shutil.copy2(tmp_path / "other" / CACHE_NAME, folder / CACHE_NAME)
    table = read_columns(folder / "clusters.csv")
    assert session_io.load(folder).paths == table["path"]
    for damage in (b"", b"not a zip at all", (tmp_path / "other" / "features.npy").read_bytes()):
        (folder / CACHE_NAME).write_bytes(damage)
        before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
        loaded = session_io.load(folder)
        assert loaded.paths == table["path"]
        np.testing.assert_array_equal(loaded.labels, np.array(table["cluster"], np.int64))
        assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_a_session_saved_again_without_its_cache_gets_one_and_changed_points_are_written_anew(folder):
    (folder / CACHE_NAME).unlink()
    session = session_io.load(folder)  # parsed
    session.coords[3] = [0.0, 0.0]
    session_io.save(session, folder, report=False, write_features=False, write_tree=False)
    assert (folder / CACHE_NAME).is_file()
    # The cached text of unchanged points is reused; a moved point (even 0.0 -> -0.0) is written anew.
    again = session_io.load(folder)
    again.coords[3] = [-0.0, 0.0]
    again.coords[4] += 1
    session_io.save(again, folder, report=False, write_features=False, write_tree=False)
    table = read_columns(folder / "clusters.csv")
    assert (table["x"][3], table["y"][3]) == ("-0.0", "0.0")
    assert table["x"][4] == repr(float(again.coords[4, 0]))
    expected = [repr(float(v)) for v in again.coords[:, 1].astype(np.float64)]
    assert table["y"] == expected


def test_a_recut_keeps_hierarchy_csv_unless_the_cache_cannot_vouch_for_it(folder):
    session = session_io.load(folder)
    hierarchy = folder / "hierarchy.csv"
    before = (hierarchy.read_bytes(), hierarchy.stat().st_mtime_ns, hierarchy.stat().st_ino)
    apply_recut(session, plan_recut(session, session.tree.finer(session.level)))
    session_io.save(session, folder, report=False, write_features=False, write_tree=False)
    assert (hierarchy.read_bytes(), hierarchy.stat().st_mtime_ns, hierarchy.stat().st_ino) == before
    (folder / CACHE_NAME).unlink()  # nothing vouches for it now: it is written again (same content)
    session_io.save(session, folder, report=False, write_features=False, write_tree=False)
    assert hierarchy.read_bytes() == before[0] and hierarchy.stat().st_ino != before[2]  # a new file
    assert session_io.load(folder).level == session.level


def files_read(monkeypatch) -> list[str]:
    """Names of the files a load reads whole (Path.read_bytes), as it reads them."""
    names: list[str] = []
    read_bytes = Path.read_bytes

    def spy(self):
        names.append(self.name)
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    return names


def saved_slowly(folder: Path, monkeypatch) -> None:
    """Save the folder's session again, the cache written a while after the CSVs (as for a big session:
    its CSVs take longer than a timestamp tick), so their stat keys are not racy and get recorded."""
    write = row_cache.write

    def later(*args, **kwargs):
        time.sleep(0.02)
        write(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(row_cache, "write", later)
        session_io.save(session_io.load(folder), folder, report=False, write_features=False)


needs_ctime = pytest.mark.skipif(os.name != "posix", reason="st_ctime is a change time on POSIX only")


@needs_ctime
def test_csvs_unchanged_since_the_save_are_known_by_their_stat_key_and_not_read(folder, monkeypatch):
    saved_slowly(folder, monkeypatch)
    forbid_parsing(monkeypatch)
    read = files_read(monkeypatch)
    session = session_io.load(folder)
    assert "clusters.csv" not in read and "hierarchy.csv" not in read
    table = read_columns(folder / "clusters.csv")
    assert session.paths == table["path"]
    np.testing.assert_array_equal(session.labels, np.array(table["cluster"], np.int64))
    hierarchy = read_columns(folder / "hierarchy.csv")
    np.testing.assert_array_equal(session.tree.leaf_of, np.array(hierarchy[f"k{session.tree.n_leaves}"], int))


@needs_ctime
def test_a_csv_edited_after_the_save_keeping_size_and_mtime_is_still_parsed(folder, monkeypatch):
    saved_slowly(folder, monkeypatch)
    labels = read_columns(folder / "clusters.csv")["cluster"]
    row = next(i for i, c in enumerate(labels) if len(c) == 1 and c not in ("0", "-1"))
    inode = (folder / "clusters.csv").stat().st_ino
    edit_cell(folder / "clusters.csv", row, "cluster", "0")
    assert (folder / "clusters.csv").stat().st_ino == inode  # edited in place: only the ctime tells
    read = files_read(monkeypatch)
    assert session_io.load(folder).labels[row] == 0
    assert "clusters.csv" in read


def test_a_stat_key_is_recorded_only_when_older_than_the_cache(folder):
    key = row_cache.file_key(folder / "clusters.csv")
    if key is None:
        pytest.skip("no stat keys where st_ctime is not a change time")
    ctime = int(key[3])
    assert not row_cache.racy(key, ctime + 1)
    # the cache made in the file's own timestamp tick: a write in that tick would keep the key
    assert row_cache.racy(key, ctime)
    assert row_cache.racy(None, ctime + 1)


@needs_ctime
def test_a_hard_linked_copy_is_checked_by_digest_until_saved_again(folder, tmp_path, monkeypatch):
    copy = tmp_path / "linked"
    copy.mkdir()
    for path in folder.iterdir():
        if path.is_file():
            os.link(path, copy / path.name)  # cp -al: the same inodes, a new ctime
    read = files_read(monkeypatch)
    session = session_io.load(copy)
    assert {"clusters.csv", "hierarchy.csv"} <= set(read)
    assert session.paths == read_columns(folder / "clusters.csv")["path"]
    before = (folder / "clusters.csv").read_bytes()
    saved_slowly(copy, monkeypatch)
    assert (folder / "clusters.csv").read_bytes() == before  # atomic replaces: the original is untouched
    read.clear()
    forbid_parsing(monkeypatch)
    assert session_io.load(copy).paths == session.paths
    assert "clusters.csv" not in read and "hierarchy.csv" not in read


@pytest.fixture
def compact(folder, monkeypatch) -> Path:
    """The folder's session with rows excluded and missing, saved with session.json compact (as above
    PRETTY_JSON_MAX images)."""
    monkeypatch.setattr(session_io, "PRETTY_JSON_MAX", 5)
    session = session_io.load(folder)
    session.set_excluded([1, 4], True)
    session.missing[[0, 2, 3]] = True
    session_io.save(session, folder, report=False, write_features=False, write_tree=False)
    return folder


def test_a_compact_session_json_keeps_its_row_lists_for_other_tools(compact):
    meta = json.loads((compact / "session.json").read_text())  # as another tool reads it
    assert meta["excluded_rows"] == [1, 4] and meta["missing_rows"] == [0, 2, 3]
    assert list(meta)[-2:] == ["excluded_rows", "missing_rows"]
    assert meta["n_images"] == len(read_columns(compact / "clusters.csv")["path"])


def test_the_row_lists_come_from_the_cache_without_parsing_them(compact, monkeypatch):
    parsed: list[str] = []
    loads = json.loads

    def spy(text, *args, **kwargs):
        parsed.append(text)
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", spy)
    session = session_io.load(compact)
    assert np.flatnonzero(session.excluded).tolist() == [1, 4]
    assert np.flatnonzero(session.missing).tolist() == [0, 2, 3]
    assert '"missing_rows":[]' in parsed[0] and '"missing_rows":[0,2,3]' not in parsed[0]
    assert session_io.load(compact).clusters == session.clusters


def test_row_lists_edited_by_hand_or_rewritten_by_another_tool_are_read_from_session_json(compact):
    path = compact / "session.json"
    text = path.read_text()
    path.write_text(text.replace('"missing_rows":[0,2,3]', '"missing_rows":[0,2,5]'))  # one digit
    assert np.flatnonzero(session_io.load(compact).missing).tolist() == [0, 2, 5]
    meta = json.loads(text)
    meta["excluded_rows"] = [7]
    path.write_text(json.dumps(dict(reversed(meta.items())), indent=2))
    session = session_io.load(compact)
    assert np.flatnonzero(session.excluded).tolist() == [7]
    assert np.flatnonzero(session.missing).tolist() == [0, 2, 3]
