"""Adding images to a curated session: new rows placed and joined, old ones untouched, undo byte for byte.

Real images on disk, the real offline model on CPU, a real clustering run (PCA map and k-means keep it
quick), then `core.update` and the `imgclust update` command on the saved folder.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_groups

from imgclust_desktop.core import pipeline, update_folder
from imgclust_desktop.core import session as session_io
from imgclust_desktop.core import update as update_mod
from imgclust_desktop.core.cluster import ClusterParams
from imgclust_desktop.core.history import HistoryError, snapshots
from imgclust_desktop.core.placement import place


def make_session(root: Path) -> tuple[Path, Path]:
    """3 groups x 8 images clustered and saved: (images folder, session folder)."""
    images = write_groups(root / "images", groups=3, per_group=8, size=48)
    request = pipeline.PipelineRequest(
        inputs=[str(images)],
        device="cpu",
        embedding="pca",
        cluster=ClusterParams(method="kmeans", space="reduced", k_range=(2, 6)),
    )
    folder = root / "session"
    session_io.save(pipeline.run(request), folder, report=False)
    return images, folder


def add_images(images: Path, root: Path, per_known: int = 4, new_group: bool = True) -> list[Path]:
    """per_known more images in each known group's folder and (optionally) a whole unseen group3/."""
    extra = write_groups(root / "extra", groups=4, per_group=8, size=48, seed=1)
    added = []
    for g in range(3):
        for i in range(per_known):
            target = images / f"group{g}" / f"extra{i:02d}.png"
            shutil.move(extra / f"group{g}" / f"img{i:02d}.png", target)
            added.append(target)
    if new_group:
        shutil.move(extra / "group3", images / "group3")
        added.extend(sorted((images / "group3").iterdir()))
    return added


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file of a session folder except its history/ snapshots."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "history" not in p.relative_to(folder).parts
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, Path]:
    """One real clustering run for the whole module; each test works on its own copy."""
    return make_session(tmp_path_factory.mktemp("update-template"))


@pytest.fixture
def curated(template, tmp_path):
    """A copy of the template (images and session) with curation: cluster 0 renamed, one image moved
    to another cluster, one excluded."""
    images = tmp_path / "images"
    shutil.copytree(template[0], images)
    session = session_io.load(template[1])
    session.paths = [p.replace(str(template[0]), str(images), 1) for p in session.paths]
    session.inputs = [str(images)]
    session.rename(0, "Red stripes")
    moved = int(np.flatnonzero(session.labels == 1)[0])
    session.assign([moved], 2)
    session.set_excluded([int(np.flatnonzero(session.labels == 2)[0])], True)
    folder = tmp_path / "session"
    session_io.save(session, folder, report=False)
    return images, folder, tmp_path


def test_new_images_join_their_siblings_and_a_new_group_becomes_a_new_cluster(curated):
    images, folder, root = curated
    before = session_io.load(folder)
    added = add_images(images, root)

    result = update_mod.update(before, device="cpu")
    update_mod.save_update(result, folder, report=False)
    after = session_io.load(folder)

    n = len(before.paths)
    assert after.paths[:n] == before.paths and len(after.paths) == n + len(added)
    assert np.abs(after.coords[:n] - before.coords).max() <= 1e-4
    assert np.array_equal(after.labels[:n], before.labels)
    assert np.array_equal(after.excluded[:n], before.excluded)
    assert np.array_equal(after.features[:n], before.features)
    assert {c: after.name_of(c) for c in before.clusters} == {c: before.name_of(c) for c in before.clusters}
    assert after.name_of(0) == "Red stripes"

    # Additions from known groups join the cluster most of their old siblings are in.
    row = {p: i for i, p in enumerate(after.paths)}
    joined_right, known = 0, 0
    for g in range(3):
        siblings = [i for i, p in enumerate(before.paths) if Path(p).parent.name == f"group{g}"]
        home = np.bincount(before.labels[siblings]).argmax()
        for path in (images / f"group{g}").glob("extra*.png"):
            known += 1
            joined_right += int(after.labels[row[str(path)]] == home)
    assert known == 12 and joined_right / known >= 0.9

    # The unseen group is not poured into old clusters: its images form new clusters, marked as new.
    unseen = [row[str(p)] for p in (images / "group3").iterdir()]
    unseen_labels = set(after.labels[unseen].tolist())
    assert not unseen_labels & set(before.clusters), unseen_labels
    assert unseen_labels == set(result.new_clusters) == set(after.params["new_clusters"])
    assert all(after.name_of(c).startswith("New") for c in unseen_labels)
    assert sorted(after.params["new_rows"]) == list(range(n, len(after.paths)))
    assert after.edits[-1]["op"] == "update" and len(after.edits[-1]["added"]) == len(added)
    assert "20 added (12 joined existing clusters, 8 in 1 new clusters)" in result.summary()
    # The cluster tree covers the new rows too: hierarchy.csv lists every image, and a re-cut keeps the
    # new group together (its cluster was not cut from the tree) while old rows follow the tree.
    if before.tree is not None:
        from imgclust_desktop.core.recut import apply_recut, plan_recut

        with open(folder / "hierarchy.csv", encoding="utf-8") as f:
            assert len(f.read().splitlines()) == len(after.paths) + 1
        apply_recut(after, plan_recut(after, after.tree.finer(after.level)))
        assert len(set(after.labels[unseen].tolist())) == 1
    # New points land where their cluster is on the map, not at the origin or far away.
    for g in range(3):
        mates = [i for i in range(n) if Path(after.paths[i]).parent.name == f"group{g}"]
        fresh = [row[str(p)] for p in (images / f"group{g}").glob("extra*.png")]
        spread = np.linalg.norm(after.coords[mates] - after.coords[mates].mean(0), axis=1).max()
        distance = np.linalg.norm(after.coords[fresh] - after.coords[mates].mean(0), axis=1)
        assert distance.max() <= 2 * spread + 1e-3


def test_missing_files_are_listed_and_come_back_when_restored(curated):
    images, folder, root = curated
    session = session_io.load(folder)
    gone = images / "group1" / "img03.png"
    kept = root / "img03.png"
    shutil.move(gone, kept)

    result = update_mod.update(session, device="cpu")
    update_mod.save_update(result, folder, report=False)
    after = session_io.load(folder)
    row = after.paths.index(str(gone))
    assert result.missing == [row] and after.missing[row] and after.missing.sum() == 1
    assert len(after.paths) == len(session.paths) and after.labels[row] == session.labels[row]
    assert "1 newly missing" in result.summary()

    shutil.move(kept, gone)
    again = update_mod.update(after, device="cpu")
    assert again.reattached == [row] and not again.session.missing.any() and again.added == []


def test_an_edited_file_gets_new_features_and_keeps_its_row_place_and_cluster(curated):
    images, folder, _ = curated
    session = session_io.load(folder)
    edited = images / "group0" / "img05.png"
    from PIL import Image

    Image.open(edited).transpose(Image.Transpose.ROTATE_90).convert("L").convert("RGB").save(edited)
    result = update_mod.update(session, device="cpu")
    row = session.paths.index(str(edited))
    assert result.changed == [row] and result.added == []
    updated = result.session
    assert not np.allclose(updated.features[row], session.features[row])
    assert np.array_equal(updated.coords, session.coords) and np.array_equal(updated.labels, session.labels)

    update_mod.save_update(result, folder, report=False)
    assert update_mod.update(session_io.load(folder), device="cpu").changed == []  # recorded in files.csv


def test_undo_restores_the_session_folder_byte_for_byte(curated):
    images, folder, root = curated
    session = session_io.load(folder)
    session_io.save(session, folder, report=True)  # montages and report.html are part of the folder too
    original = folder_digest(folder)
    add_images(images, root)
    update_mod.save_update(update_mod.update(session, device="cpu"), folder, report=True)
    assert folder_digest(folder) != original and len(snapshots(folder)) == 1

    update_mod.undo_update(folder)
    assert folder_digest(folder) == original
    assert snapshots(folder) == []
    with pytest.raises(HistoryError, match="no earlier state"):
        update_mod.undo_update(folder)


def test_a_failed_write_leaves_the_folder_as_it_was(curated, monkeypatch):
    images, folder, root = curated
    original = folder_digest(folder)
    add_images(images, root, new_group=False)
    result = update_mod.update(session_io.load(folder), device="cpu")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(update_folder, "write_identities", broken)
    with pytest.raises(OSError, match="disk full"):
        update_mod.save_update(result, folder, report=False)
    assert folder_digest(folder) == original


def test_place_joins_known_blobs_and_keeps_a_far_blob_apart():
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:3] * 4
    old = np.concatenate([c + rng.normal(0, 0.3, (40, 8)) for c in centres]).astype(np.float32)
    labels = np.repeat([0, 1, 2], 40)
    coords = np.concatenate([np.array([[x, 0]]) + rng.normal(0, 0.1, (40, 2)) for x in (0, 5, 10)])
    near = np.concatenate([c + rng.normal(0, 0.3, (10, 8)) for c in centres])
    far = np.eye(8, dtype=np.float32)[5] * 4 + rng.normal(0, 0.3, (12, 8))
    placed = place(old, coords, labels, np.concatenate([near, far]).astype(np.float32))

    assert np.array_equal(placed.joined_cluster[:30], np.repeat([0, 1, 2], 10))
    assert (placed.joined_cluster[30:] == -1).all() and (placed.group[30:] == 0).all()
    assert not placed.unsorted.any()
    for j, x in enumerate((0, 5, 10)):
        assert np.abs(placed.coords[10 * j : 10 * j + 10, 0] - x).max() < 1.0
    assert placed.outlier_score[30:].min() > placed.outlier_score[:30].max()


def test_placement_neighbours_are_sklearns_brute_search():
    # placement searches in numpy (no sklearn import in an update): the same neighbours as sklearn's exact
    # search, duplicates included, with distances that agree to float precision.
    from sklearn.neighbors import NearestNeighbors

    from imgclust_desktop.core.placement import _index, _kneighbors

    rng = np.random.default_rng(3)
    old = rng.normal(size=(700, 50)).astype(np.float32)
    old[10] = old[11]  # an exact duplicate pair
    queries = np.concatenate([rng.normal(size=(40, 50)).astype(np.float32), old[:30]])
    expected_dist, expected_idx = NearestNeighbors(algorithm="brute").fit(old).kneighbors(queries, 10)
    dist, idx = _kneighbors(_index(old), queries, 10, lambda: False)
    np.testing.assert_array_equal(idx[:40], expected_idx[:40])
    itself = np.arange(30)
    itself[11] = 10  # old[11] is old[10]: the tie at distance 0 goes to the lower row
    np.testing.assert_array_equal(idx[40:, 0], itself)
    assert idx[50, 1] == 11 and idx[51, 1] == 11
    np.testing.assert_allclose(dist, np.maximum(expected_dist, 0), atol=1e-5)


def test_the_update_command_prints_a_summary_and_undoes(curated):
    images, folder, root = curated
    original = folder_digest(folder)
    more = write_groups(root / "more", groups=4, per_group=6, size=48, seed=2)
    shutil.rmtree(more / "group0")
    (images / "group2" / "img07.png").unlink()

    run = subprocess.run(
        [sys.executable, "-m", "imgclust_desktop.cli", "update", str(folder), str(more), "--device", "cpu",
         "--no-report"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "update: 18 added" in run.stdout and "1 newly missing" in run.stdout
    assert f"missing {images / 'group2' / 'img07.png'}" in run.stdout
    assert "new cluster" in run.stdout  # group3 is new to this session
    after = session_io.load(folder)
    assert str(more) in after.inputs and len(after.paths) == 24 + 18

    undo = subprocess.run(
        [sys.executable, "-m", "imgclust_desktop.cli", "update", str(folder), "--undo"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert undo.returncode == 0, undo.stderr
    assert folder_digest(folder) == original
