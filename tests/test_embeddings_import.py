"""File > Import Embeddings… in the real window: a run in the worker, missing files as placeholder tiles."""

from __future__ import annotations

import numpy as np
import pytest
from test_embeddings import mixture, write_store
from test_main_window import fast_settings, wait_idle, window  # noqa: F401 (fixture)

from imgclust_desktop.gui.thumbs import ThumbnailProvider, missing_placeholder


def test_import_embeddings_clusters_in_the_worker_and_flags_missing_files(qtbot, window, tmp_path):  # noqa: F811
    features, truth = mixture(n_per=15, groups=3, dim=8)
    write_store(tmp_path / "store", features, on_disk=30)  # rows 30..44 are not on disk
    fast_settings(window)
    assert window.import_embeddings_action.text() == "&Import Embeddings…"
    window.embeddings_import.run(
        str(tmp_path / "store" / "features.npy"), str(tmp_path / "store" / "paths.txt")
    )
    assert window.worker is not None  # the GUI thread does not wait for the run
    wait_idle(qtbot, window)
    session = window.model.session
    assert session is not None and len(session.paths) == 45
    assert session.missing.tolist() == [False] * 30 + [True] * 15
    assert "15 files not on disk" in window.status_label.text()
    assert (
        window.can_recluster() and window.inputs == []
    )  # Run re-clusters; it never scans the .npy as images

    # the hover card says the file is missing; its thumbnail is the placeholder tile, an on-disk one decodes
    window.scatter._show_hover(40, None)
    assert "File missing" in window.scatter.hover.text.text()
    provider = window.model.thumbnails
    for row in (3, 40):
        provider.get(row)
    qtbot.waitUntil(lambda: provider.peek(3) is not None and provider.peek(40) is not None, timeout=10_000)
    assert provider.peek(40) == missing_placeholder(128)
    on_disk = provider.peek(3)
    assert on_disk != missing_placeholder(128) and on_disk.width() == 16  # the 16 px PNG itself


def test_placeholder_is_a_grey_tile_with_a_mark(qtbot):
    image = missing_placeholder(64)
    colours = {image.pixelColor(x, y).name() for x in range(64) for y in range(64)}
    assert "#cdcdcd" in colours and len(colours) > 2  # grey ground plus the drawn cross and the word


@pytest.mark.parametrize("missing", [np.array([False, True]), [1]])
def test_provider_accepts_a_flag_array_or_row_list(qtbot, missing):
    provider = ThumbnailProvider(
        ["", ""], None, 32, missing=missing, paths=["/nowhere/a.png", "/nowhere/b.png"]
    )
    provider.get(0)
    provider.get(1)
    qtbot.waitUntil(lambda: provider.peek(1) is not None, timeout=5_000)
    assert provider.peek(0) is None  # not on disk, not flagged: nothing to show
    provider.close()
