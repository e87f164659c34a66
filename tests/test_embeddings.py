"""Bring your own embeddings: `imgclust cluster --features F.npy --paths P.txt`, checks, missing files kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust_desktop.core import embeddings
from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.cluster import ClusterParams
from imgclust_desktop.core.evaluate import evaluate


def mixture(n_per: int = 40, groups: int = 4, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated Gaussian blobs: (features float32 [n, dim], true group per row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (groups, dim))
    truth = np.repeat(np.arange(groups), n_per)
    return (centres[truth] + rng.normal(0, 1, (len(truth), dim))).astype(np.float32), truth


def write_store(root: Path, features: np.ndarray, *, on_disk: int) -> list[str]:
    """features.npy + paths.txt under root; the first `on_disk` paths are real PNGs, the rest do not exist."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(features)):
        path = root / "images" / f"img{i:04d}.png"
        if i < on_disk:
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), (i * 37) % 256, np.uint8)).save(path)
        paths.append(str(path))
    np.save(root / "features.npy", features)
    (root / "paths.txt").write_text("\n".join(paths) + "\n", encoding="utf-8")
    return paths


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgclust_desktop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_a_folder_store_clusters_to_a_session_that_keeps_and_flags_missing_files(tmp_path):
    features, truth = mixture()
    paths = write_store(tmp_path / "store", features, on_disk=100)  # 60 of 160 files are not on disk
    result = cli("cluster", "--features", tmp_path / "store", "--out", tmp_path / "s", "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert "60 path(s) not on disk" in result.stdout
    session = session_io.load(tmp_path / "s")
    assert session.paths == paths  # nothing dropped, order kept
    assert session.missing.tolist() == [False] * 100 + [True] * 60
    assert session.model_id == "external" and session.params["features_source"] == "external"
    np.testing.assert_array_equal(session.features, features)
    assert evaluate(session.labels, truth.tolist())["ari"] > 0.95
    assert json.loads((tmp_path / "s" / "session.json").read_text())["missing_rows"] == list(range(100, 160))
    assert (tmp_path / "s" / "report.html").exists()  # montages of missing files are grey tiles, not errors


def test_separate_files_with_relative_paths_and_float64(tmp_path):
    features, truth = mixture(n_per=20, groups=3, dim=8, seed=1)
    np.save(tmp_path / "f.npy", features.astype(np.float64))
    (tmp_path / "p.txt").write_text("\n".join(f"pics/{i}.jpg" for i in range(len(features))))
    session = embeddings.run(
        embeddings.FeaturesRequest(
            str(tmp_path / "f.npy"), str(tmp_path / "p.txt"), embedding="pca", cluster=ClusterParams(k=3)
        )
    )
    assert session.paths[0] == str(tmp_path / "pics" / "0.jpg")  # relative to the paths file's folder
    assert session.missing.all() and session.features.dtype == np.float32
    assert evaluate(session.labels, truth.tolist())["ari"] == 1.0


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list, str]]:
    """name -> (extra CLI args, expected message part)."""
    good, _ = mixture(n_per=5, groups=2, dim=4)
    paths = "\n".join(f"/nowhere/{i}.png" for i in range(len(good)))
    (tmp_path / "p.txt").write_text(paths)
    (tmp_path / "short.txt").write_text("\n".join(paths.splitlines()[:-1]))
    (tmp_path / "gap.txt").write_text(paths.replace("/nowhere/3.png", ""))
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "flat.npy", good.ravel())
    np.save(tmp_path / "ints.npy", (good * 10).astype(np.int32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), np.float32))
    nan = good.copy()
    nan[[2, 7], 1] = np.nan
    nan[8, 0] = np.inf
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    p = ["--paths", tmp_path / "p.txt"]
    return {
        "1-D": ([tmp_path / "flat.npy", *p], "expected 2-D"),
        "ints": ([tmp_path / "ints.npy", *p], "expected floating point"),
        "empty": ([tmp_path / "empty.npy", *p], "is empty"),
        "nan": ([tmp_path / "nan.npy", *p], "3 row(s) with NaN or inf values (rows 2, 7, 8"),
        "count": (
            [tmp_path / "good.npy", "--paths", tmp_path / "short.txt"],
            "lists 9 paths but good.npy has 10",
        ),
        "gap": ([tmp_path / "good.npy", "--paths", tmp_path / "gap.txt"], "line 4 is empty"),
        "junk": ([tmp_path / "junk.npy", *p], "not a plain .npy"),
        "no paths": ([tmp_path / "good.npy"], "--paths is needed"),
        "absent": ([tmp_path / "absent.npy", *p], "does not exist"),
    }


@pytest.mark.parametrize(
    "case", ["1-D", "ints", "empty", "nan", "count", "gap", "junk", "no paths", "absent"]
)
def test_unusable_embeddings_are_refused_in_one_line_before_any_work(tmp_path, case):
    args, message = bad_inputs(tmp_path)[case]
    with pytest.raises(embeddings.EmbeddingsError, match=None) as caught:
        embeddings.load(*[str(a) for a in args if a != "--paths"])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_cli_exit_2_for_bad_embeddings_and_for_mixing_them_with_folders(tmp_path):
    args, message = bad_inputs(tmp_path)["nan"]
    result = cli("cluster", "--features", *args, "--out", tmp_path / "s")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "s").exists()
    result = cli("cluster", tmp_path, "--features", tmp_path / "good.npy", "--out", tmp_path / "s")
    assert result.returncode == 2 and "not both" in result.stderr
    result = cli("cluster", "--out", tmp_path / "s")
    assert result.returncode == 2 and "--features" in result.stderr


def test_a_pass_over_memory_mapped_features_leaves_them_out_of_the_resident_set(tmp_path):
    # A chunked pass (the PCA of a big --features file) releases each chunk's pages: afterwards the map
    # holds few resident pages, where reading it whole leaves every page resident.
    import mmap

    import pytest

    from imgclust_desktop.core.reduce import reduce_chunked

    if not hasattr(mmap, "MADV_DONTNEED"):
        pytest.skip("no madvise on this platform")
    path = tmp_path / "f.npy"
    np.save(path, np.random.default_rng(0).normal(size=(40_000, 256)).astype(np.float32))  # 41 MB

    def resident_kb() -> int:
        """Resident kB of this process's mappings of the file (/proc/self/smaps)."""
        import re

        total, inside = 0, False
        with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
            for line in smaps:
                if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's header line
                    inside = line.rstrip().endswith(str(path))
                elif inside and line.startswith("Rss:"):
                    total += int(line.split()[1])
        return total

    if not Path("/proc/self/smaps").exists():
        pytest.skip("no /proc/self/smaps")
    whole = np.load(path, mmap_mode="r")
    float(np.asarray(whole).sum())
    assert resident_kb() > 30_000
    del whole
    features = np.load(path, mmap_mode="r")
    reduce_chunked(features, n_components=10, chunk=4096)
    assert resident_kb() < 5_000
