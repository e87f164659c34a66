"""Session edits, and the session folder: save -> load round trip, atomic writes, damaged folders."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write_groups

from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.recut import apply_recut, plan_recut
from imgclust_desktop.core.session import ClusterInfo, Session, SessionError
from imgclust_desktop.core.sources import Skipped


def make_real_session(root: Path, groups: int = 3, per_group: int = 6, seed: int = 0) -> Session:
    """A session over real generated images: features separate the folders, one row is noise."""
    folder = write_groups(root / "images", groups=groups, per_group=per_group, size=32, seed=seed)
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    rng = np.random.default_rng(seed)
    truth = np.array([int(Path(p).parent.name.removeprefix("group")) for p in paths])
    centres = rng.normal(0, 1, (groups, 16))
    features = (centres[truth] + rng.normal(0, 0.1, (len(paths), 16))).astype(np.float32)
    coords = (np.eye(groups, 2)[truth] * 10 + rng.normal(0, 0.5, (len(paths), 2))).astype(np.float32)
    labels = truth.astype(np.int64)
    labels[0] = -1
    session = Session(
        paths=paths,
        features=features,
        coords=coords,
        labels=labels,
        outlier_score=rng.random(len(paths)).astype(np.float32),
        duplicate_group=np.where(np.arange(len(paths)) < 2, 0, -1),
        clusters={c: ClusterInfo(c, f"group {c}") for c in range(groups)},
        model_id="pixels",
        inputs=[str(folder)],
        params={"model": "pixels", "cluster": {"method": "kmeans", "k_range": (2, 5)}, "seed": seed},
        timings={"features": 0.5, "cluster": 0.01},
        scores={"silhouette": 0.8, "davies_bouldin": float("nan")},
        k_curve={"k": [2, 3, 4], "score": [0.5, 0.8, 0.6], "criterion": "silhouette", "chosen": 3},
        linkage=np.array([[0, 1, 1.0, 2], [2, 3, 2.0, 3]], float),
        linkage_cluster_ids=[0, 1, 2],
        skipped=[Skipped(str(folder / "notes.txt"), "not an image: looks like text")],
    )
    session._refresh_medoids(range(groups))
    return session


@pytest.fixture
def real_session(tmp_path) -> Session:
    return make_real_session(tmp_path)


def test_edits_change_labels_and_are_logged_with_their_inverse(real_session):
    s = real_session
    sizes = s.sizes()
    s.assign([1, 2], 2)
    assert s.labels[1] == 2 and s.labels[2] == 2
    assert s.edits[-1]["op"] == "assign" and s.edits[-1]["previous"] == [0, 0]
    s.assign_each([1, 2], s.edits[-1]["previous"])  # how the GUI undoes an assign
    assert s.sizes() == sizes

    into = s.merge([0, 1])
    assert into in (0, 1) and set(s.sizes()) == {into, 2}
    assert s.name_of(0) == "group 0" and s.name_of(1) == "group 1", "merged-away names survive for undo"
    merge = s.edits[-1]
    s.assign_each(merge["indices"], merge["previous"])
    assert s.sizes() == sizes

    new = s.split([3, 4], name="picked")
    assert new == 3 and s.name_of(new) == "picked" and s.sizes()[new] == 2
    assert s.clusters[new].medoid_index in (3, 4)
    s.rename(new, "kept")
    assert s.name_of(new) == "kept" and s.edits[-1]["previous"] == "picked"
    s.set_excluded([5], True)
    assert s.excluded[5] and s.edits[-1] == {**s.edits[-1], "op": "exclude", "indices": [5], "flag": True}
    assert s.new_cluster_id() == 4 and 4 in s.clusters and s.name_of(-1) == "Noise"
    json.dumps(s.edits)  # every entry is JSON-able


def test_medoid_follows_edits_and_members_start_with_it(real_session):
    s = real_session
    medoid = s.clusters[1].medoid_index
    assert s.labels[medoid] == 1
    s.assign([medoid], 2)
    new_medoid = s.clusters[1].medoid_index
    assert new_medoid != medoid and s.labels[new_medoid] == 1
    members = s.members(1)
    assert members[0] == new_medoid and set(members) == set(np.flatnonzero(s.labels == 1))


def test_rename_does_not_leak_into_a_shallow_copy(real_session):
    snapshot = dict(real_session.clusters)
    real_session.rename(0, "changed")
    assert snapshot[0].name == "group 0"


def test_save_load_round_trips_everything(real_session, tmp_path):
    s = real_session
    s.rename(1, 'Cats, dogs & "quotes"')
    s.set_excluded([2, 7], True)
    s.split([4])
    folder = tmp_path / "session"
    session_io.save(s, folder, report=False)
    assert s.path == folder
    back = session_io.load(folder)
    assert back.paths == s.paths and back.path == folder
    for name in ("features", "coords", "labels", "outlier_score", "duplicate_group", "excluded"):
        np.testing.assert_array_equal(getattr(back, name), getattr(s, name), err_msg=name)
    assert back.features.dtype == np.float32 and back.labels.dtype == np.int64
    assert back.clusters == s.clusters
    assert back.edits == json.loads(json.dumps(s.edits))
    assert back.skipped == s.skipped and back.k_curve == s.k_curve
    np.testing.assert_array_equal(back.linkage, s.linkage)
    assert back.linkage_cluster_ids == s.linkage_cluster_ids
    assert back.scores["silhouette"] == 0.8 and back.scores["davies_bouldin"] is None  # NaN -> null
    assert back.params["cluster"]["k_range"] == [2, 5] and back.model_id == "pixels"
    assert back.timings == s.timings and back.inputs == s.inputs


def test_session_folder_files_follow_the_contract(real_session, tmp_path):
    folder = tmp_path / "session"
    session_io.save(real_session, folder, report=False)
    with open(folder / "clusters.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "cluster", "x", "y", "outlier_score", "is_medoid", "duplicate_group"]
    assert [r["path"] for r in rows] == real_session.paths and all(os.path.isabs(r["path"]) for r in rows)
    assert rows[0]["cluster"] == "-1"
    assert sum(r["is_medoid"] == "1" for r in rows) == 3
    meta = json.loads((folder / "session.json").read_text())
    assert meta["format_version"] == session_io.FORMAT_VERSION
    by_id = {c["id"]: c for c in meta["clusters"]}
    assert by_id[1]["size"] == real_session.sizes()[1]
    assert by_id[1]["medoid_path"] == real_session.paths[real_session.clusters[1].medoid_index]
    assert meta["skipped"][0]["reason"].startswith("not an image")
    assert np.load(folder / "features.npy", allow_pickle=False).shape == real_session.features.shape
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], "no temp files left behind"


def test_a_failed_save_keeps_the_previous_version(real_session, tmp_path, monkeypatch):
    folder = tmp_path / "session"
    session_io.save(real_session, folder, report=False)
    before = (folder / "session.json").read_bytes()
    real_session.rename(0, "never saved")

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(session_io.json, "dump", broken_dump)
    monkeypatch.setattr(session_io.json, "dumps", broken_dump)  # the writer serialises with dumps
    with pytest.raises(OSError):
        session_io.save(real_session, folder, report=False)
    assert (folder / "session.json").read_bytes() == before
    assert session_io.load(folder).name_of(0) == "group 0"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "session.json").write_text("{ not json"), "damaged"),
        (lambda f: (f / "session.json").unlink(), "no session.json"),
        (lambda f: _edit_json(f, format_version=session_io.FORMAT_VERSION + 1), "newer"),
        (lambda f: _edit_json(f, format="something-else"), "not an imgclust session"),
        (lambda f: (f / "features.npy").write_bytes(b"garbage"), "features.npy"),
        (lambda f: np.save(f / "features.npy", np.zeros((2, 3), np.float32)), "features.npy"),
        (lambda f: np.save(f / "features.npy", np.array([{"a": 1}] * 18, object)), "features.npy"),
        (lambda f: (f / "clusters.csv").write_text("path,cluster\n/a,1\n"), "clusters.csv"),
        (lambda f: _edit_csv_cell(f, "cluster", "seven"), "damaged"),
    ],
)
def test_a_damaged_session_gives_a_clear_error_and_touches_nothing(real_session, tmp_path, damage, message):
    folder = tmp_path / "session"
    session_io.save(real_session, folder, report=False)
    damage(folder)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}
    with pytest.raises(SessionError, match=message):
        session_io.load(folder)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}
    assert after == before


def test_loading_a_folder_that_is_not_a_session(tmp_path):
    with pytest.raises(SessionError, match="not a session folder"):
        session_io.load(tmp_path / "missing")
    with pytest.raises(SessionError, match="no session.json"):
        session_io.load(tmp_path)


def _edit_json(folder: Path, **changes) -> None:
    meta = json.loads((folder / "session.json").read_text())
    meta.update(changes)
    (folder / "session.json").write_text(json.dumps(meta))


def _edit_csv_cell(folder: Path, column: str, value: str) -> None:
    with open(folder / "clusters.csv", newline="") as f:
        rows = list(csv.reader(f))
    rows[3][rows[0].index(column)] = value
    with open(folder / "clusters.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_large_features_are_saved_as_float16_and_loaded_memory_mapped(real_session, tmp_path, monkeypatch):
    # Above FLOAT16_ABOVE_BYTES (1 GiB as float32; 1M x 1280) features.npy is float16, written in row
    # chunks, and load() maps it instead of reading it; an autosave keeps the float16 file as it is.
    monkeypatch.setattr(session_io, "FLOAT16_ABOVE_BYTES", 100)
    folder = tmp_path / "session"
    session_io.save(real_session, folder, report=False)
    stored = np.load(folder / "features.npy", allow_pickle=False)
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored, real_session.features, rtol=1e-3, atol=1e-3)
    back = session_io.load(folder)
    assert isinstance(back.features, np.memmap) and back.features.dtype == np.float16
    before = (folder / "features.npy").stat().st_mtime_ns
    back.rename(0, "kept")
    session_io.save(back, folder, report=False, write_features=False)
    assert (folder / "features.npy").stat().st_mtime_ns == before
    assert session_io.load(folder).name_of(0) == "kept"
    monkeypatch.setattr(session_io, "FLOAT16_ABOVE_BYTES", 1 << 30)
    session_io.save(back, tmp_path / "small", report=False)  # small again: float32 on disk
    assert np.load(tmp_path / "small" / "features.npy").dtype == np.float32


FORMAT_1 = Path(__file__).parent / "fixtures" / "session_v1"  # saved by format 1: the tree in session.json


def test_a_format_1_session_without_tree_npz_or_rows_npz_loads_and_is_saved_as_format_2(tmp_path):
    before = {p.name: p.read_bytes() for p in FORMAT_1.iterdir()}
    assert "rows.npz" not in before and "tree.npz" not in before
    session = session_io.load(FORMAT_1)
    meta = json.loads(before["session.json"])
    assert meta["format_version"] == 1
    with open(FORMAT_1 / "clusters.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert session.paths == [r["path"] for r in table]
    np.testing.assert_array_equal(session.labels, [int(r["cluster"]) for r in table])
    np.testing.assert_array_equal(
        session.coords[:, 0], np.array([r["x"] for r in table], float).astype(np.float32)
    )
    np.testing.assert_array_equal(session.tree.linkage, np.array(meta["tree"]["linkage"]))
    np.testing.assert_array_equal(session.leaf_terms.ids, meta["tree"]["terms"]["ids"])
    assert session.level == meta["tree"]["level"] and session.tree.levels == meta["tree"]["levels"]
    assert session.node_curation == {int(k): v for k, v in meta["tree"]["node_curation"].items()}
    assert session.tree.node_medoids == {}  # format 1 kept none
    assert {p.name: p.read_bytes() for p in FORMAT_1.iterdir()} == before  # loading wrote nothing

    apply_recut(session, plan_recut(session, session.tree.coarser(session.level)))
    session_io.save(session, tmp_path / "s", report=False)
    saved = json.loads((tmp_path / "s" / "session.json").read_text())
    assert saved["format_version"] == session_io.FORMAT_VERSION == 2
    assert "linkage" not in saved["tree"] and set(saved["tree"]["terms"]) == {"vocabulary"}
    again = session_io.load(tmp_path / "s")
    np.testing.assert_array_equal(again.tree.linkage, session.tree.linkage)
    np.testing.assert_array_equal(again.leaf_terms.weight, session.leaf_terms.weight)
    assert again.tree.node_medoids == session.tree.node_medoids != {}
    assert again.clusters == session.clusters and again.node_curation == session.node_curation


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "tree.npz").unlink(), "tree.npz is missing"),
        (lambda f: (f / "tree.npz").write_bytes(b"garbage"), "tree.npz is damaged"),
        (lambda f: np.savez(f / "tree.npz", linkage=np.zeros((3, 4))), "tree.npz is damaged"),
        (lambda f: (f / "hierarchy.csv").unlink(), "hierarchy.csv is missing"),
    ],
)
def test_a_tree_session_with_a_missing_or_damaged_tree_file_is_refused_clearly(tmp_path, damage, message):
    session_io.save(session_io.load(FORMAT_1), tmp_path / "s", report=False)
    damage(tmp_path / "s")
    with pytest.raises(SessionError, match=message):
        session_io.load(tmp_path / "s")


def test_medoids_of_reads_in_blocks_and_gives_each_clusters_own_medoid():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(120, 6)).astype(np.float32)
    labels = rng.integers(-1, 9, 120)
    labels[labels == 3] = 4  # an id with no rows
    for block in (1, 7, 50, 8192):  # clusters larger and smaller than a block
        medoids = session_io.medoids_of(features, labels, range(9), block=block)
        assert set(medoids) == set(range(9)) - {3}
        for cid, row in medoids.items():
            rows = np.flatnonzero(labels == cid)
            unit = features[rows] / np.linalg.norm(features[rows], axis=1, keepdims=True)
            assert row == rows[np.argmax(unit @ unit.mean(axis=0))], (block, cid)


def test_medoids_of_many_clusters_are_each_clusters_own_medoid():
    from imgclust_desktop.core.session import medoids_of

    rng = np.random.default_rng(5)
    features = rng.normal(size=(3000, 6)).astype(np.float32)
    labels = rng.integers(-1, 40, size=3000)
    centre = rng.normal(size=6).astype(np.float32)
    features[labels == 3] = centre + 0.5 * rng.normal(size=(int(np.sum(labels == 3)), 6))
    labels[[7, 11]] = 3
    features[[7, 11]] = 2 * centre  # twins on the cluster's mean direction: the first row wins the tie
    wanted = [c for c in range(0, 40, 3)] + [99]  # a subset, and an id with no images
    got = medoids_of(features, labels, wanted)
    assert 99 not in got and set(got) == {c for c in wanted if c != 99}
    for cid, medoid in got.items():
        rows = np.flatnonzero(labels == cid)
        unit = features[rows] / np.linalg.norm(features[rows], axis=1, keepdims=True)
        score = unit @ unit.mean(axis=0)
        assert labels[medoid] == cid and score[np.searchsorted(rows, medoid)] >= score.max() - 1e-6
    assert got[3] == 7
