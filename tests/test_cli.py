"""The real `imgclust` command in a subprocess: cluster, similar, export (+undo, dry run, kill -9), evaluate."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_groups
from PIL import Image

from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.export import safe_name
from imgclust_desktop.core.recut import cut_nodes
from imgclust_desktop.core.session import Session

GROUPS, PER_GROUP = 3, 10


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `python -m imgclust_desktop.cli ARGS` and capture its output (stderr is not a TTY: no bar)."""
    return subprocess.run(
        [sys.executable, "-m", "imgclust_desktop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mixed_groups(root: Path, seed: int = 0, per_group: int = PER_GROUP) -> Path:
    """3 visually distinct folders of small images, every other one saved as JPEG."""
    write_groups(root, groups=GROUPS, per_group=per_group, size=64, seed=seed)
    for i, png in enumerate(sorted(root.rglob("*.png"))):
        if i % 2:
            Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=92)
            png.unlink()
    return root


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """One real clustering run shared by the tests of this module: (images folder, session folder, result)."""
    root = tmp_path_factory.mktemp("cli")
    images = mixed_groups(root / "images")
    (images / "notes.txt").write_text("not an image")
    out = root / "session"
    started = time.perf_counter()
    result = cli("cluster", images, "--out", out, "--device", "cpu", "--seed", "0")
    print(f"cluster run took {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    return images, out, result


def test_cluster_writes_a_session_where_the_three_groups_are_three_clusters(clustered):
    images, out, result = clustered
    assert {p.name for p in out.iterdir()} >= {
        "session.json",
        "clusters.csv",
        "features.npy",
        "montages",
        "report.html",
    }
    with open(out / "clusters.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == GROUPS * PER_GROUP
    assert all(os.path.isabs(r["path"]) and os.path.isfile(r["path"]) for r in rows)
    clusters_by_folder: dict[str, set[str]] = {}
    for r in rows:
        clusters_by_folder.setdefault(Path(r["path"]).parent.name, set()).add(r["cluster"])
    # Each folder is one cluster, no image is noise, and no two folders share a cluster.
    assert all(len(c) == 1 and "-1" not in c for c in clusters_by_folder.values()), clusters_by_folder
    assert len(set().union(*clusters_by_folder.values())) == GROUPS
    features = np.load(out / "features.npy", allow_pickle=False)
    assert features.dtype == np.float32 and features.shape[0] == len(rows)
    assert sorted(p.name for p in (out / "montages").iterdir()) == [f"cluster_{c}.jpg" for c in range(GROUPS)]
    meta = json.loads((out / "session.json").read_text())
    assert set(meta["timings"]) >= {"scan", "features", "reduce", "embed", "cluster", "analyse"}
    assert meta["model_id"] == "efficientnet-lite0" and meta["params"]["seed"] == 0
    assert any(s["path"].endswith("notes.txt") for s in meta["skipped"])
    assert f"{len(rows)} images -> {GROUPS} clusters" in result.stdout
    assert result.stderr == "", "no progress bar when stderr is not a terminal"


def read_csv_columns(path: Path) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {name: [r[name] for r in rows] for name in rows[0]}


def test_the_session_holds_a_cluster_tree_that_recut_moves_through_and_back(clustered, tmp_path):
    _, original, _ = clustered
    out = tmp_path / "session"
    shutil.copytree(original, out)
    meta = json.loads((out / "session.json").read_text())
    tree = meta["tree"]
    hierarchy = read_csv_columns(out / "hierarchy.csv")
    columns = [c for c in hierarchy if c != "path"]
    # path, then k<N> columns coarse to fine, each with exactly N groups; the default one is clusters.csv's.
    assert columns == [f"k{k}" for k in tree["levels"]] and tree["levels"] == sorted(tree["levels"])
    assert all(len(set(hierarchy[f"k{k}"])) == k for k in tree["levels"])
    before = read_csv_columns(out / "clusters.csv")
    assert hierarchy["path"] == before["path"]
    assert hierarchy[f"k{tree['default_level']}"] == before["cluster"] and tree["level"] == GROUPS
    assert all(c["name"] and not c["name"].startswith("Cluster ") for c in meta["clusters"])  # named
    # The tree's arrays are in tree.npz, with the medoid of every group of every stored level, so a re-cut
    # reads no features; rows.npz mirrors the CSVs for a fast load.
    assert "linkage" not in tree and {"tree.npz", "rows.npz"} <= {p.name for p in out.iterdir()}
    stored = session_io.load(out).tree
    assert all(set(cut_nodes(stored, k).tolist()) <= set(stored.node_medoids) for k in stored.levels)
    hierarchy_file = (out / "hierarchy.csv").read_bytes()
    finer = cli("recut", out, "--finer")
    assert finer.returncode == 0, finer.stderr + finer.stdout
    after = read_csv_columns(out / "clusters.csv")
    finer_level = json.loads((out / "session.json").read_text())["tree"]["level"]
    assert finer_level > GROUPS and after["cluster"] == hierarchy[f"k{finer_level}"]
    assert after["x"] == before["x"] and after["y"] == before["y"]  # no map work
    assert (out / "features.npy").read_bytes() == (original / "features.npy").read_bytes()
    assert (out / "hierarchy.csv").read_bytes() == hierarchy_file  # a re-cut leaves the tree as it is
    back = cli("recut", out, "--k", str(GROUPS))
    assert back.returncode == 0, back.stderr + back.stdout
    restored = read_csv_columns(out / "clusters.csv")
    assert {c: v for c, v in restored.items() if c != "is_medoid"} == {
        c: v for c, v in before.items() if c != "is_medoid"
    }  # every row back as it was (the medoids are now the tree groups' own, as a re-cut computes them)
    assert restored["is_medoid"].count("1") == GROUPS
    log = [e["op"] for e in json.loads((out / "session.json").read_text())["edits"]]
    assert log[-2:] == ["recut", "recut"]
    level = cli(
        "cluster", out / "missing-folder", "--out", tmp_path / "x", "--level", "3", "--cluster", "kmeans"
    )
    assert level.returncode == 2 and "--level" in level.stderr


def test_evaluate_against_folder_names(clustered):
    _, out, _ = clustered
    as_json = cli("evaluate", out, "--json")
    assert as_json.returncode == 0, as_json.stderr
    scores = json.loads(as_json.stdout)
    assert scores["acc"] == pytest.approx(1.0) and scores["nmi"] == pytest.approx(1.0)
    assert scores["ari"] == pytest.approx(1.0)
    table = cli("evaluate", out, "--truth", "parent-folder")
    assert table.returncode == 0 and "ACC" in table.stdout and "NMI" in table.stdout and "ARI" in table.stdout


def test_similar_for_an_image_in_the_set_and_one_outside_it(clustered, tmp_path):
    images, out, _ = clustered
    query = sorted((images / "group1").iterdir())[0]
    inside = cli("similar", query, "--session", out, "-k", "5", "--json")
    assert inside.returncode == 0, inside.stderr
    hits = json.loads(inside.stdout)
    assert len(hits) == 5 and str(query) not in [h["path"] for h in hits]
    assert all(Path(h["path"]).parent.name == "group1" for h in hits)
    outside = mixed_groups(tmp_path / "new", seed=7, per_group=1)  # unseen images, same three looks
    new_image = next((outside / "group2").iterdir())
    result = cli("similar", new_image, "--session", out, "-k", "4", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[-1] for line in result.stdout.splitlines()[1:]]
    assert len(listed) == 4 and all(Path(p).parent.name == "group2" for p in listed)


@pytest.mark.parametrize("mode", ["copy", "move", "link", "symlink"])
def test_export_each_mode_never_overwrites_and_undo_restores(clustered, tmp_path, mode):
    images, out, _ = clustered
    session = session_io.load(out)
    before = snapshot(images)
    member = session.paths[int(np.flatnonzero(session.labels == 0)[0])]
    dest = tmp_path / "dest"
    folder = safe_name(session.name_of(0), "cluster 0")  # clusters have automatic names: their folders
    (dest / folder).mkdir(parents=True)
    (dest / folder / Path(member).name).write_bytes(b"the person's own file")
    result = cli("export", out, "--to", dest, "--mode", mode)
    assert result.returncode == 0, result.stderr
    manifest = next(dest.glob("imgclust-export-*.csv"))
    assert (dest / folder / Path(member).name).read_bytes() == b"the person's own file"
    twin = dest / folder / (Path(member).stem + " (2)" + Path(member).suffix)
    assert twin.exists() and twin.read_bytes() == before[str(Path(member).relative_to(images))]
    exported = [p for p in dest.rglob("*") if p.parent != dest and not p.is_dir()]
    assert len(exported) == len(session.paths) + 1
    if mode == "move":
        assert not any(os.path.exists(p) for p in session.paths)
    elif mode == "symlink":
        assert all(p.is_symlink() for p in exported if p.name != Path(member).name)
    else:
        assert snapshot(images) == before
    undo = cli("export", "--undo", manifest)
    assert undo.returncode == 0, undo.stderr + undo.stdout
    assert snapshot(images) == before
    assert [p.name for p in (dest / folder).iterdir()] == [Path(member).name]


def test_dry_run_changes_nothing(clustered, tmp_path):
    images, out, _ = clustered
    before_images, before_session = snapshot(images), snapshot(out)
    result = cli("export", out, "--to", tmp_path / "dest", "--clusters", "0,2", "--mode", "move", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "nothing was changed" in result.stdout and result.stdout.count(" -> ") == 2 * PER_GROUP
    assert not (tmp_path / "dest").exists()
    assert snapshot(images) == before_images and snapshot(out) == before_session


def test_a_malicious_cluster_name_cannot_escape_the_destination(clustered, tmp_path):
    images, out, _ = clustered
    session = session_io.load(out)
    session.rename(1, "../../../escaped")
    session.rename(2, "/absolute\x07")
    edited = tmp_path / "edited"
    session_io.save(session, edited, report=False)
    dest = tmp_path / "deep" / "dest"
    result = cli("export", edited, "--to", dest, "--clusters", "1,2")
    assert result.returncode == 0, result.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".png", ".jpg")]
    assert len(files) == 2 * PER_GROUP and all(dest in p.parents for p in files)
    assert {p.name for p in dest.iterdir() if p.is_dir()} == {"_.._.._escaped", "_absolute_"}


def test_a_damaged_session_fails_in_one_line_and_is_left_untouched(clustered, tmp_path):
    _, out, _ = clustered
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    text = (damaged / "session.json").read_text()
    (damaged / "session.json").write_text(text[: len(text) // 2])
    before = snapshot(damaged)
    for args in (["export", damaged, "--to", tmp_path / "dest"], ["evaluate", damaged]):
        result = cli(*args)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and "session.json is damaged" in result.stderr
        assert "Traceback" not in result.stderr
    assert snapshot(damaged) == before and not (tmp_path / "dest").exists()
    assert "Traceback" in cli("--debug", "evaluate", damaged).stderr


def test_an_export_killed_half_way_loses_nothing_and_undo_restores(tmp_path):
    # Sources on a RAM disk when there is one: the move then crosses drives and takes the slow, careful
    # path (copy, fsync, rename, manifest, delete), slow enough to be killed in the middle.
    shm = Path("/dev/shm")
    base = (
        Path(shm / f"imgclust-test-{os.getpid()}") if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    )
    sources = base / "sources"
    sources.mkdir(parents=True)
    try:
        n = 400 if base != tmp_path else 4000
        rng = np.random.default_rng(0)
        originals = {}
        for i in range(n):
            path = sources / f"photo{i:04d}.jpg"
            originals[str(path)] = rng.bytes(20_000 if base != tmp_path else 500)
            path.write_bytes(originals[str(path)])
        paths = sorted(originals)
        session = Session(
            paths=paths, features=rng.random((n, 4)), coords=rng.random((n, 2)), labels=np.arange(n) % 2
        )
        session_io.save(session, tmp_path / "session", report=False)
        dest = tmp_path / "dest"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imgclust_desktop.cli",
                "export",
                tmp_path / "session",
                "--to",
                dest,
                "--mode",
                "move",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        manifest = None
        while time.monotonic() < deadline and process.poll() is None:
            manifest = next(dest.glob("imgclust-export-*.csv"), None) if dest.exists() else None
            if manifest is not None and manifest.read_bytes().count(b"\n") > 20:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL, "the export finished before it could be killed"
        moved_rows = manifest.read_bytes().count(b"\n") - 1
        assert 0 < moved_rows < n
        # Every file is whole at its source or at its destination.
        for path, content in originals.items():
            placed = [p for p in dest.glob(f"*/{Path(path).name}")]
            assert (os.path.exists(path) and Path(path).read_bytes() == content) or (
                placed and placed[0].read_bytes() == content
            ), path
        undo = cli("export", "--undo", manifest)
        assert undo.returncode == 0, undo.stdout + undo.stderr
        assert {str(p): p.read_bytes() for p in sources.iterdir()} == originals
        assert not list(dest.rglob(".imgclust-partial-*"))
    finally:
        if base != tmp_path:
            shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["cluster", "x"], "--out"),
        (["cluster", "x", "--out", "y", "--k", "3", "--k-range", "2:5"], "not allowed with"),
        (["cluster", "x", "--out", "y", "--k-range", "5"], "A:B"),
        (["cluster", "x", "--out", "y", "--cluster", "magic"], "invalid choice"),
        (["cluster", "x", "--out", "y", "--model", "no-such-model"], "unknown model"),
        (["similar", "a.jpg"], "--session"),
        (["export", "s"], "--to"),
        (["export", "s", "--to", "d", "--clusters", "one"], "whole numbers"),
        (["frobnicate"], "invalid choice"),
        ([], "COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args, message):
    result = cli(*args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_unknown_cluster_id_and_out_folder_that_is_not_a_session(clustered, tmp_path):
    images, out, _ = clustered
    result = cli("export", out, "--to", tmp_path / "d", "--clusters", "0,42")
    assert result.returncode == 2 and "no cluster 42" in result.stderr
    result = cli("cluster", images, "--out", images)
    assert result.returncode == 2 and "not a session folder" in result.stderr


def test_a_folder_without_images_fails_with_a_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hello")
    result = cli("cluster", tmp_path / "empty", "--out", tmp_path / "s")
    assert result.returncode == 1 and result.stderr.startswith("imgclust: error: no images found")
    assert not (tmp_path / "s").exists()


def test_version_models_and_help():
    assert cli("--version").stdout.strip().startswith("imgclust ")
    models = json.loads(cli("models", "--json").stdout)
    assert models[0]["id"] == "efficientnet-lite0" and all({"id", "dim", "licence"} <= set(m) for m in models)
    help_text = cli("cluster", "--help").stdout
    assert "examples:" in help_text and "imgclust export --undo" in help_text


def test_a_20_by_4000_strip_a_banner_and_a_panorama_are_clustered_not_skipped(tmp_path):
    images = tmp_path / "images"
    write_groups(images, groups=3, per_group=6, size=96)  # 96 px: the photo path (224 px input, padded)
    rng = np.random.default_rng(0)
    odd = images / "odd"
    odd.mkdir()
    shapes = {"strip.png": (20, 4000), "banner.jpg": (4000, 20), "panorama.jpg": (3000, 500)}
    for name, (width, height) in shapes.items():
        pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(odd / name)
    out = tmp_path / "session"

    result = cli("cluster", images, "--out", out, "--device", "cpu", "--no-cache", "--no-report")

    assert result.returncode == 0, result.stderr
    with open(out / "clusters.csv", newline="", encoding="utf-8") as f:
        rows = {str(Path(r["path"]).relative_to(images)): r for r in csv.DictReader(f)}
    assert len(rows) == 3 * 6 + len(shapes)
    for name in (f"odd/{name}" for name in shapes):
        assert int(rows[name]["cluster"]) >= 0, rows[name]  # in a cluster, on the map
        assert np.isfinite([float(rows[name]["x"]), float(rows[name]["y"])]).all()
    assert json.loads((out / "session.json").read_text())["skipped"] == []
    features = np.load(out / "features.npy")
    assert np.isfinite(features).all() and np.linalg.norm(features, axis=1).min() > 0
