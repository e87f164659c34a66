"""compute_features over real folders: the cache makes a second run free, edits are noticed, bad files are
skipped with rows still lined up, cancel is quick, and the real default model separates real groups."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch
from conftest import write_groups
from PIL import Image

from imgclust_desktop.core.cache import FeatureCache, ThumbnailCache
from imgclust_desktop.core.decode import decode
from imgclust_desktop.core.features import compute_features, features_from_arrays
from imgclust_desktop.core.progress import Cancelled
from imgclust_desktop.core.sources import scan


class TinyConvExtractor:
    """A real (random-weight) conv net that follows the Extractor protocol and counts embed calls."""

    id = display_name = "tiny-conv"
    input_size = 32
    dim = 16
    needs_download = False
    licence = "n/a"
    cache_key = "tiny-conv@32"
    device = "cpu"

    def __init__(self, seconds_per_batch: float = 0.0) -> None:
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        ).eval()
        self.embed_calls = 0
        self.embedded = 0
        self.seconds_per_batch = seconds_per_batch

    def preprocess(self, images):
        squares = [np.asarray(Image.fromarray(im).resize((32, 32), Image.BILINEAR)) for im in images]
        return torch.from_numpy(np.stack(squares).astype(np.float32) / 255.0).permute(0, 3, 1, 2)

    def embed(self, batch):
        self.embed_calls += 1
        self.embedded += len(batch)
        time.sleep(self.seconds_per_batch)  # stands in for a big model on a slow CPU
        with torch.inference_mode():
            return self.net(batch).numpy().astype(np.float32)


@pytest.fixture
def caches(tmp_path):
    return FeatureCache(tmp_path / "cache"), ThumbnailCache(tmp_path / "cache")


def test_second_run_comes_from_the_cache_without_decoding_or_embedding(image_folder, caches, monkeypatch):
    feature_cache, thumb_cache = caches
    files = scan([image_folder]).files
    model = TinyConvExtractor()
    first_thumbs: dict[int, bytes] = {}
    first = compute_features(
        files,
        model,
        feature_cache=feature_cache,
        thumb_cache=thumb_cache,
        batch_size=5,
        on_thumbnail=first_thumbs.__setitem__,
    )
    assert first.computed == 24 and first.features.shape == (24, 16) and first.skipped == []
    assert model.embedded == 24 and sorted(first_thumbs) == list(range(24))

    decoded_again = []
    import imgclust_desktop.core.ingest as ingest

    real_decode = ingest.decode
    monkeypatch.setattr(ingest, "decode", lambda *a, **k: decoded_again.append(a) or real_decode(*a, **k))
    again = TinyConvExtractor()
    progress = []
    second_thumbs: dict[int, bytes] = {}
    second = compute_features(
        scan([image_folder]).files,
        again,
        feature_cache=feature_cache,
        thumb_cache=thumb_cache,
        on_progress=progress.append,
        on_thumbnail=second_thumbs.__setitem__,
    )
    assert again.embed_calls == 0 and second.computed == 0 and decoded_again == []
    assert np.array_equal(second.features, first.features)
    assert second_thumbs == first_thumbs
    assert progress[-1].stage == "features" and progress[-1].done == progress[-1].total == 24


def test_an_edited_file_is_recomputed_and_a_deleted_one_dropped(image_folder, caches):
    feature_cache, thumb_cache = caches
    files = scan([image_folder]).files
    first = compute_features(files, TinyConvExtractor(), feature_cache=feature_cache, thumb_cache=thumb_cache)
    edited, deleted = files[3].path, files[10].path
    Image.new("RGB", (48, 48), (10, 10, 10)).save(edited)  # new content, size and time
    os.utime(edited, ns=(files[3].mtime_ns + 10**9,) * 2)
    os.remove(deleted)
    model = TinyConvExtractor()
    second = compute_features(
        files, model, feature_cache=feature_cache, thumb_cache=thumb_cache
    )  # stale list
    assert second.computed == 1 and model.embedded == 1
    assert [s.path for s in second.skipped] == [deleted] and "no longer exists" in second.skipped[0].reason
    assert [f.path for f in second.files] == [f.path for f in files if f.path != deleted]
    row = [f.path for f in second.files].index(edited)
    assert not np.allclose(second.features[row], first.features[3])
    assert second.files[row].mtime_ns == os.stat(edited).st_mtime_ns


def test_bad_files_are_skipped_and_rows_line_up_with_files(tmp_path, caches):
    folder = write_groups(tmp_path / "mixed", groups=2, per_group=4)
    (folder / "group0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "group1" / "notes.jpg").write_text("not a picture")
    scanned = scan([folder])
    assert [os.path.basename(s.path) for s in scanned.skipped] == ["notes.jpg"]  # sniffed at scan time
    model = TinyConvExtractor()
    result = compute_features(scanned.files, model, feature_cache=None, thumb_cache=None, batch_size=3)
    assert [os.path.basename(s.path) for s in result.skipped] == ["broken.png"]
    assert "PNG" in result.skipped[0].reason
    good = [f for f in scanned.files if not f.path.endswith("broken.png")]
    assert result.files == good and result.features.shape == (8, 16)
    # each row is exactly that file's own features
    alone = features_from_arrays([decode(f.path, max_side=32).image for f in good], TinyConvExtractor())
    assert np.allclose(result.features, alone, atol=1e-5)


def test_cancel_stops_within_a_second(tmp_path):
    folder = write_groups(tmp_path / "many", groups=2, per_group=40)
    files = scan([folder]).files
    model = TinyConvExtractor(seconds_per_batch=0.3)  # each batch blocks for 0.3 s, like a real model
    stop = threading.Event()
    stopped_at: list[float] = []

    def press_cancel():
        stopped_at.append(time.perf_counter())
        stop.set()

    timer = threading.Timer(0.8, press_cancel)  # arrives in the middle of some batch
    timer.start()
    with pytest.raises(Cancelled):
        compute_features(
            files, model, feature_cache=None, thumb_cache=None, batch_size=8, cancelled=stop.is_set
        )
    timer.join()
    assert time.perf_counter() - stopped_at[0] < 1.0
    assert model.embedded < len(files)


def test_slow_batches_shrink_so_cancel_stays_prompt(tmp_path):
    folder = write_groups(tmp_path / "slow", groups=1, per_group=12)
    files = scan([folder]).files
    sizes: list[int] = []

    class Slow(TinyConvExtractor):
        def embed(self, batch):
            time.sleep(0.1 * len(batch))  # 0.1 s per image: a batch of 32 would take 3 s
            sizes.append(len(batch))
            return super().embed(batch)

    model = Slow()
    compute_features(files, model, feature_cache=None, thumb_cache=None, batch_size=32)
    assert sum(sizes) == 12 and max(sizes) <= 5  # each batch about half a second


def test_real_default_model_groups_nearest_neighbours(image_folder, caches):
    from imgclust_desktop.core.models import registry

    extractor = registry.create(registry.DEFAULT_MODEL, device="cpu")
    feature_cache, thumb_cache = caches
    result = compute_features(
        scan([image_folder]).files, extractor, feature_cache=feature_cache, thumb_cache=thumb_cache
    )
    assert result.features.shape == (24, extractor.dim) and np.isfinite(result.features).all()
    unit = result.features / np.linalg.norm(result.features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    groups = [os.path.basename(os.path.dirname(f.path)) for f in result.files]
    nearest = similarity.argmax(axis=1)
    assert all(groups[i] == groups[j] for i, j in enumerate(nearest))
    assert set(feature_cache.get_many([f.key() for f in result.files], extractor.cache_key)) == {
        f.key() for f in result.files
    }
