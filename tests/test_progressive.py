"""Big folders show a sample's map first, then grow batch by batch without moving a point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import write_groups

from imgclust_desktop.core import pipeline
from imgclust_desktop.core.cluster import ClusterParams
from imgclust_desktop.core.progressive import run_progressive, spread_sample


def request_for(folder: Path) -> pipeline.PipelineRequest:
    return pipeline.PipelineRequest(
        inputs=[str(folder)],
        device="cpu",
        embedding="pca",
        cluster=ClusterParams(method="kmeans", space="reduced", k_range=(2, 6)),
    )


def test_spread_sample_covers_the_whole_range():
    picks = spread_sample(1000, 10)
    assert len(picks) == 10 and picks[0] == 0 and picks[-1] == 999
    assert np.array_equal(spread_sample(5, 10), np.arange(5))


def test_first_results_come_from_a_sample_and_grow_without_moving_points(tmp_path):
    folder = write_groups(tmp_path / "images", groups=3, per_group=16, size=48)
    events = []
    final = run_progressive(
        request_for(folder), sample_size=24, batch_size=8, on_event=lambda k, s: events.append((k, s))
    )
    kinds = [k for k, _ in events]
    assert kinds == ["first", "grown", "grown", "grown"]
    sizes = [len(s.paths) for _, s in events]
    assert sizes == [24, 32, 40, 48]
    first = events[0][1]
    assert {Path(p).parent.name for p in first.paths} == {"group0", "group1", "group2"}  # spread
    for (_, before), (_, after) in zip(events, events[1:], strict=False):
        n = len(before.paths)
        assert after.paths[:n] == before.paths
        assert np.abs(after.coords[:n] - before.coords).max() <= 1e-4
        assert np.array_equal(after.labels[:n], before.labels)
    assert final is events[-1][1] and sorted(final.paths) == sorted(str(p) for p in folder.rglob("*.png"))
    assert final.inputs == [str(folder)] and "new_rows" not in final.params
    # every folder ends up (almost) in one cluster: the sample's, which the rest joined
    agree = 0
    for g in range(3):
        rows = [i for i, p in enumerate(final.paths) if Path(p).parent.name == f"group{g}"]
        agree += np.bincount(final.labels[rows]).max()
    assert agree / 48 >= 0.9 and len(final.sizes()) == 3


def test_relayout_at_the_end_gives_a_map_and_clusters_of_everything(tmp_path):
    folder = write_groups(tmp_path / "images", groups=3, per_group=10, size=48)
    final = run_progressive(request_for(folder), sample_size=10, batch_size=20, relayout=True)
    assert len(final.paths) == 30 and final.edits[-1]["op"] == "relayout"
    assert len(final.sizes()) == 3 and final.coords.shape == (30, 2)
    # The re-laid-out clusters are named like any run's (not left as "Cluster N").
    assert not any(final.name_of(c).startswith("Cluster ") for c in final.cluster_ids())


def test_the_window_shows_the_sample_map_first_then_grows_it(qtbot, settings, tmp_path, monkeypatch):
    from test_main_window import drop, fast_settings, wait_idle

    from imgclust_desktop.gui import progressive
    from imgclust_desktop.gui.main_window import MainWindow

    monkeypatch.setattr(progressive, "SAMPLE", 24)
    monkeypatch.setattr(progressive, "BATCH", 8)
    folder = write_groups(tmp_path / "images", groups=3, per_group=16, size=48)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    fast_settings(win)
    previews = []
    win.model.changed.connect(lambda: win.model.provisional and previews.append(len(win.model.session.paths)))
    drop(win.empty.headline, folder)
    wait_idle(qtbot, win)

    assert previews[0] == 24 and previews[-1] == 48 and {32, 40} <= set(previews)
    session = win.model.session
    assert not win.model.provisional and len(session.paths) == 48 and len(session.sizes()) == 3
    assert session.edits[-1]["op"] == "relayout"
