"""Pixels mode: one image's colours clustered into classes, a class map, a legend, the CLI and the panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust_desktop import cli
from imgclust_desktop.core import pixels

COLOURS = np.array([(70, 130, 220), (60, 170, 70), (230, 200, 40), (200, 50, 50)], np.float32)


def regions(height: int = 240, width: int = 320) -> np.ndarray:
    """Known classes: sky (top 40%), field, a sun disc, a red stripe."""
    yy, xx = np.mgrid[:height, :width]
    truth = np.where(yy < height * 0.4, 0, 1)
    truth[(yy - height * 0.6) ** 2 + (xx - width * 0.3) ** 2 < (height * 0.2) ** 2] = 2
    truth[:, int(width * 0.75) : int(width * 0.85)] = 3
    return truth


def painted(truth: np.ndarray, noise: float = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = COLOURS[truth] + rng.normal(0, noise, truth.shape + (3,))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def scene(tmp_path) -> tuple[Path, np.ndarray]:
    truth = regions()
    path = tmp_path / "scene.png"
    Image.fromarray(painted(truth)).save(path)
    return path, truth


def test_known_colour_regions_come_back_as_classes_with_their_area_shares():
    truth = regions()
    result = pixels.cluster_pixels(painted(truth), 4)
    assert result.labels.shape == truth.shape and result.k == 4
    for region in range(4):
        classes, counts = np.unique(result.labels[truth == region], return_counts=True)
        assert counts.max() / counts.sum() > 0.99, f"region {region} split over classes {classes}"
        cls = classes[counts.argmax()]
        assert np.abs(result.palette[cls].astype(float) - COLOURS[region]).max() < 6
        assert result.shares[cls] == pytest.approx((truth == region).mean(), abs=0.005)
    assert result.shares.sum() == pytest.approx(1.0)
    assert list(result.shares) == sorted(result.shares, reverse=True)  # class 0 is the largest area


def test_automatic_k_finds_the_four_regions():
    result = pixels.cluster_pixels(painted(regions()), None, k_range=(2, 8))
    assert result.k == 4
    assert result.k_curve["chosen"] == 4 and result.k_curve["k"] == list(range(2, 9))


def test_a_large_image_is_fitted_on_a_sample_and_every_pixel_is_assigned():
    truth = regions(600, 800)  # 480k pixels, past the sample
    result = pixels.cluster_pixels(painted(truth, seed=1), 4, sample_size=20_000)
    assert result.sampled == 20_000
    agreement = max(
        (result.labels[truth == r] == np.bincount(result.labels[truth == r]).argmax()).mean()
        for r in range(4)
    )
    assert agreement > 0.99
    assert len(np.unique(result.labels)) == 4


def test_class_map_png_and_legend(tmp_path):
    result = pixels.cluster_pixels(painted(regions()), 3)
    pixels.save_class_map(result, tmp_path / "map.png", legend_path=tmp_path / "legend.png")
    written = np.asarray(Image.open(tmp_path / "map.png").convert("RGB"))
    assert written.shape == (240, 320, 3)
    colours = {tuple(c) for c in written.reshape(-1, 3)}
    assert colours == {tuple(int(v) for v in c) for c in result.palette}
    legend = Image.open(tmp_path / "legend.png")
    assert legend.height > 3 * 20  # one row per class
    rows = pixels.legend_rows(result)
    assert [r[0] for r in rows] == [0, 1, 2] and sum(r[2] for r in rows) == pytest.approx(1.0)


def test_cli_pixels_writes_the_class_map_and_never_overwrites(scene, tmp_path, capsys):
    path, truth = scene
    out = tmp_path / "classes.png"
    assert cli.main(["pixels", str(path), "-k", "4", "--out", str(out)]) == 0
    written = np.asarray(Image.open(out).convert("RGB"))
    assert len({tuple(c) for c in written.reshape(-1, 3)}) == 4
    assert (tmp_path / "classes-legend.png").is_file()
    assert "4 colour classes" in capsys.readouterr().out

    before = out.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pixels", str(path), "--auto", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_cli_pixels_auto_reports_the_chosen_k(scene, tmp_path, capsys):
    path, _ = scene
    out = tmp_path / "auto.png"
    assert cli.main(["pixels", str(path), "--auto", "--k-range", "2:6", "--out", str(out), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["k"] == 4 and len(report["classes"]) == 4
    assert out.is_file()


def test_cli_pixels_on_a_file_that_is_not_an_image(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pixels", str(bad), "-k", "3", "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    assert "not an image" in capsys.readouterr().err
    assert bad.read_text() == "not a picture"


def test_pixels_panel_loads_an_image_and_shows_k_classes(qtbot, scene, tmp_path):
    from imgclust_desktop.gui.panels.pixels import PixelsPanel

    path, _ = scene
    panel = PixelsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.open_image(str(path))
    qtbot.waitUntil(
        lambda: panel.original_view.pixmap() is not None and not panel.original_view.pixmap().isNull()
    )
    panel.auto_k.setChecked(False)
    panel.k_spin.setValue(3)
    panel.run()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30_000)
    assert panel.legend.rowCount() == 3
    shares = [float(panel.legend.item(r, 2).text().rstrip("%")) for r in range(3)]
    assert sum(shares) == pytest.approx(100, abs=0.2)
    assert not panel.class_view.pixmap().isNull()

    out = tmp_path / "panel.png"
    panel.save_class_map(str(out))
    assert len({tuple(c) for c in np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3)}) == 3

    panel.auto_k.setChecked(True)
    panel.run()
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.k_curve is not None, timeout=60_000)
    assert panel.legend.rowCount() == 4
