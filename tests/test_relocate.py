"""A session whose images moved (folder renamed, other mount point) is pointed at their new place, checked."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_groups
from test_update import make_session

from imgclust_desktop.core import relocate as relocate_mod
from imgclust_desktop.core import session as session_io
from imgclust_desktop.core import update as update_mod


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """A saved session whose images folder was then renamed: (session folder, new images folder)."""
    root = tmp_path_factory.mktemp("relocate")
    images, folder = make_session(root)
    update_mod.save_update(update_mod.update(session_io.load(folder), device="cpu"), folder, report=False)
    target = root / "drive" / "renamed"
    target.parent.mkdir()
    shutil.move(images, target)
    return folder, target


def test_a_renamed_folder_is_found_verified_and_swapped(moved):
    folder, target = moved
    session = session_io.load(folder)
    assert relocate_mod.needs_relocation(session)

    found = relocate_mod.find_relocation(session, str(target), device="cpu")
    assert found is not None and found.verified, found
    assert found.found == 1.0 and found.new_prefix == str(target)
    assert found.size_checked > 0 and found.content_checked >= 3

    relocated = relocate_mod.relocate(session, found)
    assert not relocated.missing.any() and not relocate_mod.needs_relocation(relocated)
    assert relocated.paths[0].startswith(str(target)) and relocated.inputs == [str(target)]
    assert np.array_equal(relocated.labels, session.labels) and relocated.edits[-1]["op"] == "relocate"
    assert session.paths[0] != relocated.paths[0]  # the original is left as it was


def test_other_images_with_the_same_names_are_refused(moved, tmp_path):
    folder, target = moved
    impostor = tmp_path / "impostor"
    shutil.copytree(target, impostor)
    # Same folders and file names, other pictures (another colour and pattern per group).
    other = write_groups(tmp_path / "other", groups=5, per_group=8, size=48, seed=9)
    for g in range(3):
        for png in (impostor / f"group{g}").iterdir():
            shutil.copy(other / f"group{g + 2}" / png.name, png)

    found = relocate_mod.find_relocation(session_io.load(folder), str(impostor), device="cpu")
    assert found is not None and not found.verified
    assert found.size_mismatch or found.content_mismatch
    assert relocate_mod.find_relocation(session_io.load(folder), str(tmp_path / "other" / "nothing")) is None


def test_update_relocate_moves_the_session_without_recomputing_anything(moved, tmp_path):
    folder, target = moved
    copy = tmp_path / "session"
    shutil.copytree(folder, copy)
    run = subprocess.run(
        [sys.executable, "-m", "imgclust_desktop.cli", "update", str(copy), "--relocate", str(target),
         "--device", "cpu", "--no-report"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "relocated" in run.stdout and "0 added" in run.stdout and "0 changed" in run.stdout
    after = session_io.load(copy)
    assert not after.missing.any() and all(p.startswith(str(target)) for p in after.paths)
    assert [e["op"] for e in after.edits[-2:]] == ["relocate", "update"]
