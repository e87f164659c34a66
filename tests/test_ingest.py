"""A folder full of good and bad files goes through scan + decode_stream: every good one decoded, every bad
one listed with the right reason, and not one byte or timestamp of the inputs changed."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from imgclust_desktop.core.cache import ThumbnailCache
from imgclust_desktop.core.decode import Decoded
from imgclust_desktop.core.ingest import decode_stream
from imgclust_desktop.core.progress import Cancelled
from imgclust_desktop.core.sources import FileIdentity, Skipped, scan

STRIP = "banner.png"


def _picture(seed: int, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 60).astype(np.uint8)
    pixels[:, : size[0] // 2, 0] += 180  # red-ish left half, so orientation is checkable
    return Image.fromarray(pixels)


def _encoded(fmt: str, seed: int = 0, **kwargs) -> bytes:
    buffer = io.BytesIO()
    _picture(seed).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _bomb_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 99))
        + chunk(b"IEND", b"")
    )


def build_corpus(root) -> tuple[dict[str, str], list[str]]:
    """Write one file per case; returns ({bad name: expected reason fragment}, [good names])."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    good = {
        "photo.jpg": _encoded("JPEG", 1, quality=92),
        "drawing.png": _encoded("PNG", 2),
        "web.webp": _encoded("WEBP", 3, lossless=True),
        "scan.tiff": _encoded("TIFF", 4),
        "old.bmp": _encoded("BMP", 5),
        "anim.gif": _encoded("GIF", 6),
        "phone.heic": _encoded("HEIF", 7, quality=90),
        "été à la plage 1.jpg": _encoded("JPEG", 8),
        "no_extension": _encoded("PNG", 9),
    }
    jpeg = _encoded("JPEG", 10, quality=92)
    strip = io.BytesIO()
    Image.new("RGB", (4000, 20), (9, 9, 9)).save(strip, "PNG")
    damaged = bytearray(jpeg)
    damaged[len(jpeg) // 3 : len(jpeg) // 3 + 1500] = (
        np.random.default_rng(0).integers(0, 256, 1500, np.uint8).tobytes()
    )
    bad = {
        "empty.jpg": (b"", "empty file (0 bytes)"),
        "cut.jpg": (jpeg[: len(jpeg) // 2], "truncated JPEG: the file ends early"),
        "cut.png": (_encoded("PNG", 11)[:300], "truncated PNG: the file ends early"),
        "damaged.jpg": (bytes(damaged), "corrupt JPEG"),
        "invoice.jpg": (b"%PDF-1.6\n%\xe2\xe3\n4 0 obj", "not an image: looks like a PDF document"),
        "labels.png": (b"cat,dog\n1,0\n", "not an image: looks like a text file"),
        "archive.jpeg": (b"PK\x03\x04\x14\x00\x00\x00" + bytes(40), "not an image: looks like a ZIP archive"),
        "bomb.png": (_bomb_png(), "too large to decode safely"),
        ".secret.jpg": (jpeg, "hidden file"),
        "._photo.jpg": (b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ", "macOS resource fork"),
    }
    good[STRIP] = strip.getvalue()  # a 4000 x 20 banner is a picture too
    for name, data in good.items():
        (root / name).write_bytes(data)
    for name, (data, _) in bad.items():
        (root / name).write_bytes(data)
    expected = {name: reason for name, (_, reason) in bad.items()}
    if sys.platform != "win32":
        os.symlink(root, root / "loop")
        expected["loop"] = "symbolic link loop"
    return expected, sorted(good)


def fingerprint(root) -> dict[str, tuple[str, int]]:
    out = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as handle:
                out[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


def run_all(files, **kwargs) -> list[tuple[int, Decoded | Skipped]]:
    return list(decode_stream(files, max_side=64, **kwargs))


def test_bad_corpus_is_listed_with_reasons_good_files_decode_and_nothing_changes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    expected_bad, good_names = build_corpus(folder)
    before = fingerprint(folder)
    thumbs = ThumbnailCache(tmp_path / "cache")

    result = scan([folder])
    results = run_all(result.files, thumb_cache=thumbs, workers=2, prefetch=4)

    assert [i for i, _ in results] == list(range(len(result.files)))  # in order, one each
    skipped = {os.path.basename(s.path): s.reason for s in result.skipped}
    skipped.update({os.path.basename(r.path): r.reason for _, r in results if isinstance(r, Skipped)})
    assert set(skipped) == set(expected_bad), skipped
    for name, fragment in expected_bad.items():
        assert fragment in skipped[name], (name, skipped[name])
    decoded = {os.path.basename(result.files[i].path): r for i, r in results if isinstance(r, Decoded)}
    assert sorted(decoded) == good_names
    assert decoded[STRIP].image.shape == (1, 64, 3)  # long edge fitted, short edge kept >= 1 px
    for name, item in decoded.items():
        if name == STRIP:
            continue
        assert item.image.shape == (43, 64, 3), name
        red_left = item.image[:, :32, 0].mean() - item.image[:, 32:, 0].mean()
        assert red_left > 120, name  # colours and orientation survived every format
    stored = thumbs.has_all([f.key() for f in result.files], 128)
    assert stored == {f.key() for f in result.files if os.path.basename(f.path) in decoded}
    assert fingerprint(folder) == before  # not one byte or timestamp of the inputs changed


def test_a_file_that_vanishes_or_changes_after_scanning_is_skipped(tmp_path):
    for i in range(3):
        _picture(i).save(tmp_path / f"{i}.png")
    files = scan([tmp_path]).files
    os.remove(files[0].path)
    _picture(9, (50, 50)).save(files[1].path)
    os.utime(files[1].path, ns=(files[1].mtime_ns + 10**9, files[1].mtime_ns + 10**9))
    results = run_all(files, thumb_cache=None)
    assert "no longer exists" in results[0][1].reason
    assert "changed" in results[1][1].reason
    assert isinstance(results[2][1], Decoded)


def test_cancel_stops_the_stream_quickly(tmp_path):
    for i in range(40):
        _picture(i, (400, 300)).save(tmp_path / f"{i:02d}.png")
    files = scan([tmp_path]).files
    stop = threading.Event()
    seen = 0
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        for _index, _result in decode_stream(
            files, max_side=64, thumb_cache=None, workers=2, cancelled=stop.is_set
        ):
            seen += 1
            if seen == 3:
                stop.set()
    assert seen == 3 and time.perf_counter() - started < 5


def test_consumer_stopping_early_keeps_thumbnails_made_so_far(tmp_path):
    for i in range(10):
        _picture(i).save(tmp_path / f"{i}.png")
    files = scan([tmp_path / "missing.png", tmp_path]).files
    thumbs = ThumbnailCache(tmp_path / "cache")
    stream = decode_stream(files, max_side=64, thumb_cache=thumbs, workers=1, prefetch=2)
    taken = [next(stream) for _ in range(4)]
    stream.close()
    assert [i for i, _ in taken] == [0, 1, 2, 3]
    assert {f.key() for f in files[:4]} <= thumbs.has_all([f.key() for f in files], 256)
    assert list(decode_stream([], max_side=64, thumb_cache=None)) == []


def test_identities_from_elsewhere_work_too(tmp_path):
    path = tmp_path / "x.png"
    _picture(0).save(path)
    st = os.stat(path)
    [(index, result)] = run_all([FileIdentity(str(path), st.st_size, st.st_mtime_ns)], thumb_cache=None)
    assert index == 0 and isinstance(result, Decoded) and result.original_size == (96, 64)
