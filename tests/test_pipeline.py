"""The pipeline end to end in-process: events in order, progress per stage, cancel, seeds, recluster."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_groups

from imgclust_desktop.core import pipeline
from imgclust_desktop.core.cluster import ClusterParams
from imgclust_desktop.core.progress import Cancelled
from imgclust_desktop.core.sources import ScanResult, scan


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = write_groups(tmp_path_factory.mktemp("pipeline") / "images", groups=3, per_group=8, size=48)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


@pytest.fixture(scope="module")
def first_run(folder, tmp_path_factory):
    """One run (real model on CPU) with every event and progress report recorded.

    PCA map and k-means with auto-k keep this in-process run quick (UMAP compiles for ~10 s on first use);
    the CLI test covers the UMAP + HDBSCAN defaults end to end.
    """
    events, progress = [], []
    request = pipeline.PipelineRequest(
        inputs=[str(folder)],
        device="cpu",
        seed=3,
        embedding="pca",
        cluster=ClusterParams(method="kmeans", space="reduced", k_range=(2, 6)),
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    session = pipeline.run(
        request, on_progress=progress.append, on_event=lambda kind, payload: events.append((kind, payload))
    )
    return request, session, events, progress


def test_run_finds_the_three_groups_and_reports_every_stage(first_run, folder):
    request, session, events, progress = first_run
    assert len(session.paths) == 24 and session.features.shape == (24, 112)
    assert any(s.path.endswith("broken.jpg") for s in session.skipped)
    by_folder = {}
    for path, label in zip(session.paths, session.labels.tolist(), strict=True):
        by_folder.setdefault(Path(path).parent.name, set()).add(label)
    assert all(len(labels) == 1 and -1 not in labels for labels in by_folder.values()), by_folder
    assert (
        len(session.sizes()) == 3
        and session.k_curve["chosen"] == 3
        and session.k_curve["k"] == [2, 3, 4, 5, 6]
    )
    assert session.scores["silhouette"] > 0.5
    for cid, info in session.clusters.items():
        assert session.labels[info.medoid_index] == cid
    assert set(session.timings) >= {
        "scan",
        "model",
        "features",
        "reduce",
        "embed",
        "cluster",
        "analyse",
        "total",
    }
    assert session.params["seed"] == 3 and session.params["cluster"]["seed"] == 3
    # 48 px sources are "small": a 64 px pass tapped at blocks.4, recorded so search can redo it
    assert (session.params["input_size"], session.params["layer"]) == (64, "blocks.4")
    assert session.features.shape[1] == 112
    assert session.coords.shape == (24, 2) and np.isfinite(session.coords).all()

    kinds = [kind for kind, _ in events]
    order = [kinds.index(k) for k in ("scanned", "features", "embedded", "clustered")]
    assert order == sorted(order)
    scanned = events[0][1]
    assert isinstance(scanned, ScanResult) and len(scanned.files) == 25  # the broken JPEG fails at decode
    thumbnails = [payload for kind, payload in events if kind == "thumbnail"]
    decodable = {i for i, f in enumerate(scanned.files) if not f.path.endswith("broken.jpg")}
    assert {index for index, _ in thumbnails} == decodable  # indices into the scanned files
    assert all(jpeg[:2] == b"\xff\xd8" for _, jpeg in thumbnails)
    stages = {p.stage for p in progress}
    assert {"scan", "model", "reduce", "analyse"} <= stages and any("feature" in s for s in stages)


def test_same_seed_same_result_and_features_come_from_the_cache(first_run):
    request, session, _, _ = first_run
    events = []
    again = pipeline.run(request, on_event=lambda kind, payload: events.append((kind, payload)))
    features_event = next(payload for kind, payload in events if kind == "features")
    assert features_event.computed == 0, "re-opening the same files must not re-extract"
    np.testing.assert_array_equal(again.labels, session.labels)
    np.testing.assert_allclose(again.coords, session.coords, atol=1e-5)


def test_recluster_uses_stored_features_only(first_run, monkeypatch):
    _, session, _, _ = first_run
    from imgclust_desktop.core.models import registry

    monkeypatch.setattr(registry, "create", lambda *a, **k: pytest.fail("recluster must not load a model"))
    before_labels = session.labels.copy()
    result = pipeline.recluster(session, ClusterParams(method="kmeans", k=2, space="reduced"))
    assert len(result.sizes()) == 2 and result.params["cluster"]["method"] == "kmeans"
    np.testing.assert_array_equal(result.coords, session.coords)
    assert result.features is session.features
    np.testing.assert_array_equal(session.labels, before_labels)  # the original session is left as it was
    assert result.edits[-1]["op"] == "recluster"


def test_cancel_during_features_stops_the_run(folder, tmp_path):
    request = pipeline.PipelineRequest(inputs=[str(folder)], device="cpu", cache_dir=str(tmp_path / "cache"))
    seen = []

    def cancelled() -> bool:
        return any("feature" in p.stage for p in seen)

    started = time.perf_counter()
    with pytest.raises(Cancelled):
        pipeline.run(request, on_progress=seen.append, cancelled=cancelled)
    assert time.perf_counter() - started < 30
    assert not any(p.stage in ("reduce", "analyse") for p in seen)


def test_no_images_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(pipeline.PipelineError, match="no images found"):
        pipeline.run(pipeline.PipelineRequest(inputs=[str(tmp_path)], use_cache=False))


def test_features_for_an_outside_image_match_the_run(first_run, tmp_path):
    _, session, _, _ = first_run
    row = 5
    copy = tmp_path / "copy.png"
    copy.write_bytes(Path(session.paths[row]).read_bytes())  # same pixels, a path the session never saw
    vector = pipeline.features_for_images(session, [str(copy)], device="cpu")
    assert vector.shape == (1, session.features.shape[1])
    np.testing.assert_allclose(vector[0], session.features[row], rtol=1e-3, atol=1e-4)
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    with pytest.raises(pipeline.PipelineError, match="cannot read"):
        pipeline.features_for_images(session, [str(tmp_path / "bad.jpg")], device="cpu")


def test_input_rule_keeps_photos_at_224_and_the_head(tmp_path):
    small = write_groups(tmp_path / "small", groups=1, per_group=4, size=28)
    large = write_groups(tmp_path / "large", groups=1, per_group=4, size=300)
    assert pipeline.choose_input(scan([small]).files) == (64, "blocks.4")
    assert pipeline.choose_input(scan([large]).files) == (224, None)
    assert pipeline.median_long_edge(scan([large]).files) == 300
    assert pipeline.choose_input([]) == (224, None)  # nothing readable: the photo default
