"""ThumbnailProvider: non-blocking loads from the real cache, progressive put(), bounded memory."""

from __future__ import annotations

import gc
import threading

import pytest
from views_support import thumbnail_jpeg

from imgclust_desktop.core.cache import ThumbnailCache
from imgclust_desktop.gui.thumbs import ThumbnailProvider


@pytest.fixture
def cache(tmp_path):
    cache = ThumbnailCache(tmp_path / "cache")
    cache.put_many((f"k{i}", {128: thumbnail_jpeg(i % 5, i)}) for i in range(60))
    yield cache
    cache.close()


def test_get_is_non_blocking_then_ready_delivers_the_cached_image(qtbot, cache):
    provider = ThumbnailProvider([f"k{i}" for i in range(60)], cache, 128)
    arrived = []
    provider.ready.connect(arrived.append)
    assert provider.get(7) is None  # nothing decoded yet: schedules a load
    qtbot.waitUntil(lambda: 7 in arrived, timeout=3000)
    assert arrived == [7]  # only what was asked for is loaded
    image = provider.get(7)
    assert image is not None and max(image.width(), image.height()) == 128
    provider.close()


def test_put_fills_images_the_cache_does_not_have_yet(qtbot, tmp_path):
    provider = ThumbnailProvider(["new0", "new1"], ThumbnailCache(tmp_path / "empty"), 128)
    assert provider.get(1) is None
    qtbot.wait(100)
    assert provider.get(1) is None  # not in the cache: stays missing, no error
    with qtbot.waitSignal(provider.ready, timeout=3000, check_params_cb=lambda i: i == 1):
        provider.put(1, thumbnail_jpeg(2, 9))
    assert provider.get(1) is not None
    provider.put(0, b"not a jpeg at all")  # a broken thumbnail is skipped, never raised
    qtbot.wait(200)
    assert provider.get(0) is None
    provider.close()


def test_decoded_images_stay_within_the_budget_and_evicted_ones_reload(qtbot, cache):
    budget = 10 * 128 * 128 * 4  # room for about ten decoded thumbnails
    provider = ThumbnailProvider([f"k{i}" for i in range(60)], cache, 128, image_budget=budget)
    seen = set()
    provider.ready.connect(seen.add)
    for i in range(60):
        provider.get(i)
    qtbot.waitUntil(lambda: len(seen) == 60, timeout=5000)
    stats = provider.stats()
    assert stats["image_bytes"] <= budget and stats["images"] < 60
    evicted = next(i for i in range(60) if provider.peek(i) is None)
    with qtbot.waitSignal(provider.ready, timeout=3000, check_params_cb=lambda i: i == evicted):
        assert provider.get(evicted) is None
    assert provider.peek(evicted) is not None
    provider.close()


def test_a_dropped_provider_stops_its_loader_thread(qtbot, cache):
    before = {t for t in threading.enumerate() if t.name == "thumbnail-loader"}
    provider = ThumbnailProvider(["k1"], cache, 128)
    provider.get(0)
    qtbot.wait(50)
    del provider
    gc.collect()
    qtbot.waitUntil(
        lambda: {t for t in threading.enumerate() if t.name == "thumbnail-loader"} <= before, timeout=3000
    )


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_decode_thumbnail_gives_rgb32_with_the_pixels_of_the_jpeg_or_png(qapp, mode):
    import io

    from PIL import Image
    from PySide6.QtGui import QColor, QImage

    from imgclust_desktop.gui.thumbs import decode_thumbnail

    picture = Image.new("RGB", (40, 24), (200, 30, 60))
    picture.paste((20, 180, 40), (20, 0, 40, 24))  # right half green
    picture = picture.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG" if mode in ("RGBA", "P") else "JPEG", quality=95)
    image = decode_thumbnail(buffer.getvalue())
    assert (image.width(), image.height()) == (40, 24)
    assert image.format() == QImage.Format.Format_RGB32
    left, right = QColor(image.pixel(5, 12)), QColor(image.pixel(35, 12))
    expected_left, expected_right = (
        picture.convert("RGB").getpixel((5, 12)),
        picture.convert("RGB").getpixel((35, 12)),
    )
    assert abs(left.red() - expected_left[0]) <= 6 and abs(left.green() - expected_left[1]) <= 6
    assert abs(right.red() - expected_right[0]) <= 6 and abs(right.green() - expected_right[1]) <= 6


def test_decode_thumbnail_of_damaged_bytes_is_a_null_image(qapp):
    from imgclust_desktop.gui.thumbs import decode_thumbnail

    assert decode_thumbnail(b"").isNull()
    assert decode_thumbnail(b"\xff\xd8\xff\xe0 not really a jpeg").isNull()
