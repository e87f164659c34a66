"""Faces mode: real photos (scikit-image's astronaut, LFW faces) -> face crops -> clusters -> source photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from imgclust_desktop import cli
from imgclust_desktop.core import faces
from imgclust_desktop.core import session as session_io

# The astronaut's face in skimage.data.astronaut() (512 x 512): roughly x 175-275, y 60-165.
ASTRONAUT_FACE = (175, 60, 100, 105)
LFW_DETECTED = (0, 1, 2, 3)  # LFW faces the Haar cascade finds at 100 px (bench/faces.py: 90 of 100)


def overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def lfw_photo(index: int) -> np.ndarray:
    """One LFW face (25 px) shown at 100 px on a grey 160 px picture."""
    face = Image.fromarray((data.lfw_subset()[index] * 255).astype(np.uint8)).resize(
        (100, 100), Image.BICUBIC
    )
    canvas = np.full((160, 160), 128, np.uint8)
    canvas[30:130, 30:130] = np.asarray(face)
    return np.stack([canvas] * 3, -1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """4 photos of the astronaut (as shot, mirrored, darker, re-framed), 4 LFW people, 1 photo without a face."""
    root = tmp_path_factory.mktemp("photos")
    astronaut = data.astronaut()
    (root / "astronaut").mkdir()
    (root / "others").mkdir()
    Image.fromarray(astronaut).save(root / "astronaut" / "as_shot.png")
    Image.fromarray(astronaut[:, ::-1]).save(root / "astronaut" / "mirrored.png")
    Image.fromarray((astronaut * 0.8).astype(np.uint8)).save(root / "astronaut" / "darker.jpg", quality=92)
    Image.fromarray(astronaut[20:480, 40:500]).save(root / "astronaut" / "reframed.png")
    for i in LFW_DETECTED:
        Image.fromarray(lfw_photo(i)).save(root / "others" / f"lfw_{i}.png")
    Image.fromarray(data.coffee()).save(root / "coffee.png")
    return root


def test_the_detector_finds_the_astronauts_face_and_her_eyes():
    found = faces.detect_faces(data.astronaut())
    assert len(found) == 1
    face = found[0]
    assert overlap((face.x, face.y, face.w, face.h), ASTRONAUT_FACE) > 0.5
    (lx, ly), (rx, ry) = face.eyes
    assert face.x < lx < face.x + face.w / 2 < rx < face.x + face.w
    assert ly < face.y + face.h / 2 and ry < face.y + face.h / 2


def test_a_group_photo_gives_one_box_per_face():
    group = np.concatenate([data.astronaut(), data.astronaut()[:, ::-1]], axis=1)  # two people side by side
    found = faces.detect_faces(group)
    assert len(found) == 2
    assert sorted(f.x < 512 for f in found) == [False, True]


def test_photos_without_faces_find_none():
    for name in ("coffee", "chelsea", "rocket"):  # a cup, a cat, a rocket
        assert faces.detect_faces(getattr(data, name)()) == [], name


def test_alignment_levels_the_eyes_of_a_tilted_face():
    import cv2

    astronaut = data.astronaut()
    tilt = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((223, 113), 12, 1.0), (512, 512))
    face = max(faces.detect_faces(tilt), key=lambda f: f.w)
    assert face.eyes is not None
    (lx, ly), (rx, ry) = face.eyes
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) > 6  # the eyes are tilted in the photo
    crop = faces.align_crop(tilt, face, size=160)
    level = faces.detect_faces(crop, min_size=60)
    assert level and level[0].eyes is not None
    (lx, ly), (rx, ry) = level[0].eyes
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 5


def test_crops_link_back_to_their_photos_and_faceless_or_broken_files_are_listed(photos, tmp_path):
    broken = tmp_path / "inputs"
    broken.mkdir()
    (broken / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    group = np.concatenate([data.astronaut(), data.astronaut()[:, ::-1]], axis=1)
    Image.fromarray(group).save(broken / "group.png")
    result = faces.extract_face_crops([photos, broken], tmp_path / "crops")

    assert result.sources == 11  # the broken file is counted among the skipped, not the sources
    assert [Path(p).name for p in result.no_face] == ["coffee.png"]
    assert [Path(s.path).name for s in result.skipped] == ["broken.jpg"]
    per_source: dict[str, int] = {}
    for crop in result.crops:
        per_source[Path(crop.source_path).name] = per_source.get(Path(crop.source_path).name, 0) + 1
        with Image.open(crop.crop_path) as im:
            assert im.size == (160, 160) and im.format == "PNG"
    assert per_source["group.png"] == 2
    assert all(
        per_source[name] == 1 for name in ("as_shot.png", "mirrored.png", "darker.jpg", "reframed.png")
    )
    assert all(per_source[f"lfw_{i}.png"] == 1 for i in LFW_DETECTED)

    with open(result.csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.crops)
    as_shot = next(r for r in rows if r["source_path"].endswith("as_shot.png"))
    box = tuple(int(as_shot[k]) for k in "xywh")
    assert overlap(box, ASTRONAUT_FACE) > 0.5 and as_shot["aligned"] == "1"
    assert faces.read_face_map(result.csv_path) == result.crops


def test_the_crop_folder_is_never_one_with_other_files(photos, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(faces.FacesError, match="choose an empty folder"):
        faces.extract_face_crops([photos / "astronaut"], folder)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"

    first = faces.extract_face_crops([photos / "astronaut"], tmp_path / "crops")
    again = faces.extract_face_crops([photos / "astronaut"], tmp_path / "crops")  # a re-run replaces its own
    assert len(again.crops) == len(first.crops) == 4
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == sorted(
        [Path(c.crop_path).name for c in again.crops] + ["faces.csv"]
    )


def test_cli_faces_clusters_people_and_export_by_person_copies_the_photos(photos, tmp_path, capsys):
    from imgclust_desktop.core import export

    out = tmp_path / "session"
    code = cli.main(
        [
            "faces",
            str(photos),
            "--out",
            str(out),
            "--cluster",
            "kmeans",
            "--k",
            "2",
            "--embedding",
            "pca",
            "--no-report",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "9 images: 8 faces, 1 without a face" in printed
    session = session_io.load(out)
    assert all(Path(p).parent == out / "faces" for p in session.paths)
    recorded = json.loads((out / "session.json").read_text())
    assert recorded["params"]["faces"]["no_face"] == [str(photos / "coffee.png")]
    assert any(s.reason == faces.NO_FACE_REASON for s in session.skipped)

    people = faces.source_paths_for(session)
    astronaut_photos = {str(p) for p in (photos / "astronaut").iterdir()}
    by_person = sorted(set(v) for v in people.values())
    assert astronaut_photos in by_person  # all four astronaut photos are one person
    astronaut_id = next(cid for cid, v in people.items() if set(v) == astronaut_photos)
    crop = session.paths[int(np.flatnonzero(session.labels == astronaut_id)[0])]
    assert faces.source_of(session, crop) in astronaut_photos

    plan = faces.plan_source_export(session, tmp_path / "people", clusters=[astronaut_id])
    manifest = export.run_export(plan)
    assert manifest.done == 4
    exported = {
        p.name: p.read_bytes() for p in (tmp_path / "people").rglob("*") if p.suffix in (".png", ".jpg")
    }
    assert exported == {Path(p).name: Path(p).read_bytes() for p in astronaut_photos}  # the photos, not crops


def test_export_by_person_copies_a_photo_once_per_person(photos, tmp_path):
    """Two faces of one person in one photo export that photo once; the crops never leave the session."""
    group = tmp_path / "group"
    group.mkdir()
    both = np.concatenate([data.astronaut(), data.astronaut()[:, ::-1]], axis=1)
    Image.fromarray(both).save(group / "twins.png")
    Image.fromarray(data.astronaut()).save(group / "single.png")
    extraction = faces.extract_face_crops([group], tmp_path / "crops")
    from imgclust_desktop.core.session import ClusterInfo, Session

    n = len(extraction.crops)
    session = Session(
        paths=[c.crop_path for c in extraction.crops],
        features=np.zeros((n, 4), np.float32),
        coords=np.zeros((n, 2), np.float32),
        labels=np.zeros(n, np.int64),
        clusters={0: ClusterInfo(0, "Astronaut")},
        params={"faces": faces.face_params(extraction)},
    )
    plan = faces.plan_source_export(session, tmp_path / "out")
    assert sorted(Path(src).name for src, _ in plan) == ["single.png", "twins.png"]
    assert all(Path(dst).parent.name == "Astronaut" for _, dst in plan)


def test_the_modes_menu_clusters_faces_in_the_window_and_links_crops_to_photos(
    qtbot, settings, photos, tmp_path
):
    from imgclust_desktop.gui.faces import install_modes_menu
    from imgclust_desktop.gui.main_window import MainWindow

    window = MainWindow(settings)
    qtbot.addWidget(window)
    mode = install_modes_menu(window)
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Modes")
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Cluster &faces in folder…",
        "&Segment image by colour…",
        "&Open source photo of selected face",
        "&Export faces by person…",
    ]
    panel = window.settings_panel
    panel.embedding.setCurrentIndex(panel.embedding.findData("pca"))
    panel.method.setCurrentIndex(panel.method.findData("kmeans"))
    panel.space.setCurrentIndex(panel.space.findData("reduced"))
    panel.auto_k.setChecked(False)
    panel.k.setValue(2)

    mode.cluster_faces(str(photos))
    qtbot.waitUntil(
        lambda: (
            window.model.session is not None
            and not window.model.provisional
            and "faces" in window.model.session.params
        ),
        timeout=180_000,
    )
    session = window.model.session
    assert len(session.paths) == 8 and all(Path(p).name.endswith(".png") for p in session.paths)
    reasons = {Path(s.path).name: s.reason for s in session.skipped}
    assert reasons == {"coffee.png": faces.NO_FACE_REASON}  # and not faces.csv

    astronaut_rows = [
        i for i, p in enumerate(session.paths) if faces.source_of(session, p).find("astronaut") >= 0
    ]
    window.model.select(astronaut_rows)
    assert sorted(mode.selected_sources()) == sorted(str(p) for p in (photos / "astronaut").iterdir())
    qtbot.waitUntil(lambda: window.worker is None, timeout=10_000)
    mode.export_by_person(str(tmp_path / "people"))
    qtbot.waitUntil(lambda: mode.worker is None, timeout=30_000)
    exported = sorted(p.name for p in (tmp_path / "people").rglob("*") if p.suffix in (".png", ".jpg"))
    with_faces = ["as_shot.png", "mirrored.png", "darker.jpg", "reframed.png"] + [
        f"lfw_{i}.png" for i in LFW_DETECTED
    ]
    assert exported == sorted(with_faces)  # every photo with a face, each once; no crops, no coffee
