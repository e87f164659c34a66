"""Weight downloads: progress, cancel, checksum and atomic finish, exercised on a local file:// URL."""

from __future__ import annotations

import hashlib

import pytest

from imgclust_desktop.core.models import download
from imgclust_desktop.core.progress import Cancelled


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGCLUST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "CHUNK", 1000)  # several chunks even for a small file
    payload = bytes(range(256)) * 40
    path = tmp_path / "weights.bin"
    path.write_bytes(payload)
    return path, payload


def test_download_reports_progress_and_lands_in_the_weights_cache(source, tmp_path):
    path, payload = source
    reports = []
    target = download.download(
        path.as_uri(),
        "model.bin",
        sha256_prefix=hashlib.sha256(payload).hexdigest()[:8],
        on_progress=reports.append,
    )
    assert target == tmp_path / "cache" / "weights" / "model.bin"
    assert target.read_bytes() == payload
    assert reports and reports[-1].done == reports[-1].total == len(payload)
    assert download.cached_weights("model.bin") == target
    path.unlink()  # a second call must not need the source again
    assert download.download(path.as_uri(), "model.bin") == target


def test_cancel_leaves_nothing_behind(source):
    path, _ = source
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        download.download(path.as_uri(), "model.bin", cancelled=lambda: next(calls) >= 2)
    assert list(download.weights_dir().iterdir()) == []
    assert download.cached_weights("model.bin") is None


def test_damaged_or_missing_downloads_fail_with_a_reason(source, tmp_path):
    path, _ = source
    with pytest.raises(download.DownloadError, match="checksum"):
        download.download(path.as_uri(), "model.bin", sha256_prefix="00000000")
    assert download.cached_weights("model.bin") is None
    with pytest.raises(download.DownloadError, match="could not download"):
        download.download((tmp_path / "missing.bin").as_uri(), "other.bin")
