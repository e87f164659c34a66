"""bench/make_photoset.py: the generated photo set is real, labelled by folder, varied and reproducible."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def photoset():
    spec = importlib.util.spec_from_file_location("make_photoset", BENCH / "make_photoset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_photoset"] = module
    spec.loader.exec_module(module)
    return module


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.jpg")}


def test_each_scene_is_a_folder_of_decodable_jpeg_views(photoset, tmp_path):
    root = photoset.make_photoset(tmp_path, per_scene=5, scenes=["astronaut", "camera", "china"])
    assert sorted(p.name for p in root.iterdir()) == ["astronaut", "camera", "china"]
    for scene in root.iterdir():
        files = sorted(scene.glob("*.jpg"))
        assert len(files) == 5
        for f in files:
            with Image.open(f) as image:
                assert image.format == "JPEG"
                assert image.mode == "RGB"  # grey photos are written as three channels
                assert 160 <= max(image.size) <= 400


def test_views_of_one_scene_differ_but_stay_closer_to_it_than_to_another_scene(photoset, tmp_path):
    root = photoset.make_photoset(tmp_path, per_scene=6, scenes=["coffee", "moon"])

    def small(p):
        with Image.open(p) as image:
            return np.asarray(image.convert("RGB").resize((16, 16)), np.float32).ravel()

    coffee = [small(p) for p in sorted((root / "coffee").glob("*.jpg"))]
    moon = [small(p) for p in sorted((root / "moon").glob("*.jpg"))]
    assert len({hashlib.sha256(v.tobytes()).hexdigest() for v in coffee}) == 6  # no two views identical
    within = np.mean([np.linalg.norm(coffee[0] - v) for v in coffee[1:]])
    across = np.mean([np.linalg.norm(coffee[0] - v) for v in moon])
    assert within < across


def test_same_seed_same_files_other_seed_other_files(photoset, tmp_path):
    a = _digests(photoset.make_photoset(tmp_path / "a", per_scene=3, scenes=["rocket"], seed=1))
    b = _digests(photoset.make_photoset(tmp_path / "b", per_scene=3, scenes=["rocket"], seed=1))
    c = _digests(photoset.make_photoset(tmp_path / "c", per_scene=3, scenes=["rocket"], seed=2))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_a_scenes_views_do_not_depend_on_the_other_scenes_chosen(photoset, tmp_path):
    alone = _digests(photoset.make_photoset(tmp_path / "a", per_scene=2, scenes=["chelsea"]))
    together = _digests(photoset.make_photoset(tmp_path / "b", per_scene=2, scenes=["coins", "chelsea"]))
    assert alone.items() <= together.items()


def test_unknown_scene_is_refused_with_the_choices(photoset, tmp_path):
    with pytest.raises(ValueError, match="unknown scene 'nope'.*astronaut"):
        photoset.make_photoset(tmp_path, per_scene=1, scenes=["nope"])
    assert not any((tmp_path / "photoset").glob("*/*.jpg"))
