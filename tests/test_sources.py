"""Scanning real folders: what counts as an image, what is left out and why, identities for the cache."""

from __future__ import annotations

import builtins
import os
import sys

import pytest
from PIL import Image

from imgclust_desktop.core.progress import Cancelled
from imgclust_desktop.core.sources import FileIdentity, scan


def png(path, colour=(200, 30, 30)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path, format="PNG")
    return str(path)


def reasons(result) -> dict[str, str]:
    return {os.path.basename(s.path): s.reason for s in result.skipped}


def test_folders_are_searched_recursively_and_files_come_sorted_and_unique(tmp_path):
    a = png(tmp_path / "set" / "b.png")
    b = png(tmp_path / "set" / "deep" / "er" / "a.png")
    c = png(tmp_path / "other" / "c.png")
    result = scan([tmp_path / "set", str(tmp_path / "other"), a, tmp_path / "set"])
    assert [f.path for f in result.files] == sorted([a, b, c])
    assert result.skipped == []
    first = result.files[0]
    assert os.path.isabs(first.path)
    assert (first.size, first.mtime_ns) == (os.stat(first.path).st_size, os.stat(first.path).st_mtime_ns)


def test_include_and_exclude_globs(tmp_path):
    png(tmp_path / "keep" / "one.png")
    png(tmp_path / "keep" / "two.jpeg")
    png(tmp_path / "raw" / "three.png")
    names = lambda r: sorted(os.path.basename(f.path) for f in r.files)  # noqa: E731
    assert names(scan([tmp_path], include=["*.png"])) == ["one.png", "three.png"]
    assert names(scan([tmp_path], exclude=["raw/*"])) == ["one.png", "two.jpeg"]
    assert names(scan([tmp_path], include=["*.png"], exclude=["raw/*"])) == ["one.png"]


def test_content_decides_not_the_extension(tmp_path):
    png(tmp_path / "scan_0001.dat")  # an image with an odd extension is found
    (tmp_path / "photo.jpg").write_bytes(b"%PDF-1.4\n1 0 obj\n<< >>\nendobj\n")
    (tmp_path / "README.txt").write_text("labels are in the folder names\n")
    (tmp_path / "clip.png").write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
    result = scan([tmp_path])
    assert [os.path.basename(f.path) for f in result.files] == ["scan_0001.dat"]
    assert reasons(result) == {
        "photo.jpg": "not an image: looks like a PDF document",
        "README.txt": "not an image: looks like a text file",
        "clip.png": "not an image: looks like a video (MP4/QuickTime)",
    }


def test_hidden_files_resource_forks_and_empty_files_are_listed(tmp_path):
    png(tmp_path / "good.png")
    png(tmp_path / ".hidden.png")
    (tmp_path / "._good.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (tmp_path / "empty.jpg").write_bytes(b"")
    png(tmp_path / ".thumbs" / "inside.png")
    result = scan([tmp_path])
    assert [os.path.basename(f.path) for f in result.files] == ["good.png"]
    found = reasons(result)
    assert found[".hidden.png"] == "hidden file (name starts with a dot)"
    assert "resource fork" in found["._good.png"]
    assert found["empty.jpg"] == "empty file (0 bytes)"
    assert "hidden folder" in found[".thumbs"]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_loops_end_and_are_reported(tmp_path):
    root = tmp_path / "photos"
    png(root / "sub" / "a.png")
    os.symlink(root, root / "sub" / "back_to_top")  # photos/sub/back_to_top -> photos
    os.symlink(root / "missing.png", root / "dangling.png")
    os.symlink(root / "self_loop.png", root / "self_loop.png")
    result = scan([root])
    assert [f.path for f in result.files] == [str(root / "sub" / "a.png")]
    found = reasons(result)
    assert "symbolic link loop" in found["back_to_top"]
    assert found["dangling.png"] == "broken or looping symbolic link"
    assert found["self_loop.png"] == "broken or looping symbolic link"


def test_unicode_and_spaces_in_names_are_kept_exactly(tmp_path):
    path = png(tmp_path / "Été 2024" / "ça va ✓ 写真 (1).png")
    result = scan([tmp_path])
    assert [f.path for f in result.files] == [path]


def test_unreadable_file_is_listed_not_fatal(tmp_path, monkeypatch):
    locked = png(tmp_path / "locked.png")
    png(tmp_path / "open.png")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        os.chmod(locked, 0)
    else:
        # root reads through chmod 000, so the permission error is simulated at open()
        real_open = builtins.open

        def guarded_open(file, *args, **kwargs):
            if os.fspath(file) == locked:
                raise PermissionError(13, "Permission denied", locked)
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
    try:
        result = scan([tmp_path])
    finally:
        os.chmod(locked, 0o644)
    assert [os.path.basename(f.path) for f in result.files] == ["open.png"]
    assert reasons(result) == {"locked.png": "cannot be read: permission denied"}


def test_missing_input_and_cancel(tmp_path):
    result = scan([tmp_path / "nowhere"])
    assert result.files == [] and result.skipped[0].reason == "input not found"
    for i in range(70):
        png(tmp_path / f"{i:03d}.png")
    with pytest.raises(Cancelled):
        scan([tmp_path], cancelled=lambda: True)


def test_identity_key_changes_with_size_or_time_and_is_stable():
    base = FileIdentity("/photos/a.jpg", 1000, 1_700_000_000_000_000_000)
    assert base.key() == FileIdentity("/photos/a.jpg", 1000, 1_700_000_000_000_000_000).key()
    assert (
        len(
            {
                base.key(),
                FileIdentity("/photos/a.jpg", 1001, base.mtime_ns).key(),
                FileIdentity("/photos/a.jpg", 1000, base.mtime_ns + 1).key(),
                FileIdentity("/photos/b.jpg", 1000, base.mtime_ns).key(),
            }
        )
        == 4
    )
