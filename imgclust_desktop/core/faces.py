"""Faces mode: find faces in images, cut them out level-eyed, and map face crops back to their photos.

The crops are ordinary PNG files in one folder with a `faces.csv` beside them (crop_path, source_path,
x, y, w, h, score, aligned; boxes in the source's pixels after EXIF orientation), so the normal pipeline
clusters them like any other images; `source_paths_for` and `plan_source_export` turn clusters of crops
back into the photos they came from ("export by person").

Detector: OpenCV's bundled Haar cascades (frontal face + eyes), as clustimage uses; `bench/faces.py`
compares it with scikit-image's bundled LBP cascade on scikit-image's own photos and LFW sample.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .progress import CancelFlag, ProgressCallback, RateMeter, check_cancel, never_cancelled, no_progress
from .sources import Skipped

FACES_CSV = "faces.csv"
CSV_FIELDS = ("crop_path", "source_path", "x", "y", "w", "h", "score", "aligned")
NO_FACE_REASON = "no face found"
DETECT_SIDE = 1280  # long edge the detector sees: faces of ~25 px and up in a 1280 px picture
DETECTORS = ("haar", "lbp")
# Haar last-stage weight below which a box is dropped. bench/faces.py: every LFW face found scores >= 2.0;
# the cut removes 2 of 4 false boxes on 14 bundled photos without people, and a 25 px one beside two faces.
MIN_SCORE = 1.5


class FacesError(Exception):
    """A faces run that cannot go on (str(e) says why in words)."""


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    score: float  # the cascade's last-stage weight: higher = more face-like
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # (left, right) eye centres


@dataclass(frozen=True)
class FaceCrop:
    crop_path: str
    source_path: str
    box: tuple[int, int, int, int]  # x, y, w, h in the source's pixels
    score: float
    aligned: bool


@dataclass
class FaceExtraction:
    folder: Path
    csv_path: Path
    crops: list[FaceCrop]
    no_face: list[str]  # images read fine with no face in them
    skipped: list[Skipped] = field(default_factory=list)  # unreadable files, with reasons
    sources: int = 0  # images looked at


# ---- detection


_cascades: dict[str, object] = {}


def _cascade(name: str):
    import cv2

    if name not in _cascades:
        path = os.path.join(cv2.data.haarcascades, name)
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise FacesError(f"cannot load the face detector model {path}")
        _cascades[name] = cascade
    return _cascades[name]


def detect_faces(
    image: np.ndarray,
    *,
    detector: str = "haar",
    min_size: int | None = None,
    min_neighbors: int = 5,
    min_score: float = MIN_SCORE,
    find_eyes: bool = True,
) -> list[FaceBox]:
    """Faces in an RGB (or grey) uint8 image, largest first; eye centres where both eyes are found."""
    import cv2

    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    grey = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    grey = cv2.equalizeHist(np.ascontiguousarray(grey, dtype=np.uint8))
    height, width = grey.shape
    side = min_size or max(20, round(min(height, width) * 0.04))
    if detector == "lbp":
        rects, weights = _detect_lbp(grey, side), None
    else:
        rects, _, weights = _cascade("haarcascade_frontalface_default.xml").detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=min_neighbors, minSize=(side, side), outputRejectLevels=True
        )
    faces = []
    rects = np.asarray(rects).reshape(-1, 4)
    weights = np.zeros(len(rects)) if weights is None else np.ravel(weights)
    for (x, y, w, h), weight in zip(rects, weights, strict=True):
        if detector == "haar" and weight < min_score:
            continue
        eyes = _find_eyes(grey, int(x), int(y), int(w), int(h)) if find_eyes else None
        faces.append(FaceBox(int(x), int(y), int(w), int(h), float(weight), eyes))
    return sorted(faces, key=lambda f: (-f.w * f.h, f.x, f.y))


def _detect_lbp(grey: np.ndarray, side: int) -> list[tuple[int, int, int, int]]:
    """scikit-image's bundled LBP frontal-face cascade (the comparison detector; it gives no score)."""
    from skimage import data
    from skimage.feature import Cascade

    if "lbp" not in _cascades:
        _cascades["lbp"] = Cascade(data.lbp_frontal_face_cascade_filename())
    found = _cascades["lbp"].detect_multi_scale(
        grey.astype(np.float32) / 255,
        scale_factor=1.2,
        step_ratio=1,
        min_size=(side, side),
        max_size=grey.shape,
        min_neighbor_number=4,
    )
    return [(d["c"], d["r"], d["width"], d["height"]) for d in found]


def _find_eyes(grey: np.ndarray, x: int, y: int, w: int, h: int):
    """The most plausible eye pair in the upper part of a face box, in image coordinates (or None)."""
    upper = grey[y : y + int(h * 0.6), x : x + w]
    found = _cascade("haarcascade_eye.xml").detectMultiScale(
        upper, scaleFactor=1.1, minNeighbors=5, minSize=(max(8, w // 10), max(8, w // 10))
    )
    centres = [
        (float(x + ex + ew / 2), float(y + ey + eh / 2))
        for ex, ey, ew, eh in np.asarray(found).reshape(-1, 4)
    ]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    best, best_tilt = None, None
    for a in left:
        for b in right:
            distance = np.hypot(b[0] - a[0], b[1] - a[1])
            tilt = abs(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
            # Eyes sit 0.25-0.7 face widths apart and roughly level; anything else is a nostril or a brow.
            if 0.25 * w <= distance <= 0.7 * w and tilt <= 30 and (best_tilt is None or tilt < best_tilt):
                best, best_tilt = (a, b), tilt
    return best


def align_crop(image: np.ndarray, face: FaceBox, *, size: int = 160, margin: float = 0.2) -> np.ndarray:
    """A square RGB crop of one face, rotated so the eyes are level when they were found."""
    import cv2

    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    angle = 0.0
    if face.eyes is not None:
        (lx, ly), (rx, ry) = face.eyes
        angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    half = face.w * (0.5 + margin)
    scale = size / (2 * half)
    # One affine warp: rotate about the face centre, scale the box to `size`, move it to the origin.
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[0, 2] += size / 2 - cx
    matrix[1, 2] += size / 2 - cy
    return cv2.warpAffine(
        np.ascontiguousarray(image),
        matrix,
        (size, size),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_REPLICATE,
    )


# ---- a folder of crops


def extract_face_crops(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    detector: str = "haar",
    crop_size: int = 160,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> FaceExtraction:
    """Detect faces in every image under `inputs`, write aligned crops + faces.csv into `out_dir`."""
    from PIL import Image

    from .decode import DecodeError, decode
    from .sources import scan

    folder = Path(out_dir).expanduser().absolute()
    _prepare_folder(folder)
    scanned = scan(inputs, include=include, exclude=exclude, on_progress=on_progress, cancelled=cancelled)
    # The crop folder may sit inside an input folder (a session saved next to the photos).
    files = [f for f in scanned.files if not _inside(f.path, folder)]
    meter = RateMeter("faces", len(files), on_progress)
    crops: list[FaceCrop] = []
    no_face: list[str] = []
    skipped = list(scanned.skipped)
    for number, file in enumerate(files):
        check_cancel(cancelled)
        try:
            decoded = decode(file.path, max_side=DETECT_SIDE, thumb_sizes=())
        except DecodeError as exc:
            skipped.append(Skipped(file.path, str(exc)))
            continue
        image = decoded.image
        faces = detect_faces(image, detector=detector)
        if not faces:
            no_face.append(file.path)
        to_source = decoded.original_size[0] / image.shape[1]
        stem = _short_stem(file.path)
        for j, face in enumerate(faces):
            crop_path = folder / f"{number:05d}_{stem}_face{j + 1}.png"
            Image.fromarray(align_crop(image, face, size=crop_size)).save(crop_path)
            box = tuple(round(v * to_source) for v in (face.x, face.y, face.w, face.h))
            crops.append(
                FaceCrop(str(crop_path), file.path, box, round(face.score, 4), face.eyes is not None)
            )
        meter.update(number + 1, message=f"{len(crops)} faces in {number + 1 - len(no_face)} images")
    meter.update(len(files), message=f"{len(crops)} faces", force=True)
    csv_path = folder / FACES_CSV
    write_face_map(crops, csv_path)
    return FaceExtraction(folder, csv_path, crops, no_face, skipped, len(files))


def _prepare_folder(folder: Path) -> None:
    """An empty folder, or one this module filled before (its old crops are replaced); never other files."""
    folder.mkdir(parents=True, exist_ok=True)
    present = [p for p in folder.iterdir()]
    if not present:
        return
    csv_path = folder / FACES_CSV
    if not csv_path.is_file():
        raise FacesError(f"{folder} already holds other files; choose an empty folder for the face crops")
    ours = {Path(c.crop_path).name for c in read_face_map(csv_path)} | {FACES_CSV}
    others = [p.name for p in present if p.name not in ours]
    if others:
        raise FacesError(
            f"{folder} holds files that are not face crops ({', '.join(sorted(others)[:3])}); "
            "choose an empty folder"
        )
    for path in present:
        path.unlink()


def _inside(path: str, folder: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), str(folder)]) == str(folder)
    except ValueError:  # different drives on Windows
        return False


def _short_stem(path: str) -> str:
    stem = Path(path).stem[:40]
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "image"


def write_face_map(crops: Sequence[FaceCrop], csv_path: str | os.PathLike) -> None:
    tmp = Path(f"{csv_path}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for c in crops:
            writer.writerow([c.crop_path, c.source_path, *c.box, f"{c.score:.4f}", int(c.aligned)])
    os.replace(tmp, csv_path)


def read_face_map(csv_path: str | os.PathLike) -> list[FaceCrop]:
    """The crops listed in a faces.csv; FacesError with a reason when it cannot be read."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise FacesError(f"cannot read the face map {csv_path}: {exc.strerror or exc}") from None
    try:
        return [
            FaceCrop(
                r["crop_path"],
                r["source_path"],
                (int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])),
                float(r["score"]),
                r["aligned"] == "1",
            )
            for r in rows
        ]
    except (KeyError, ValueError, TypeError) as exc:
        raise FacesError(f"the face map {csv_path} is damaged ({exc})") from None


# ---- from clusters of crops back to photos


def face_params(extraction: FaceExtraction, detector: str = "haar") -> dict:
    """What a session records in params["faces"]: where the map is and which images had no face."""
    return {
        "csv": str(extraction.csv_path),
        "detector": detector,
        "sources": extraction.sources,
        "faces": len(extraction.crops),
        "no_face": list(extraction.no_face),
    }


def face_map_for(session) -> dict[str, FaceCrop]:
    """crop path -> FaceCrop for a session made of face crops (params["faces"], else faces.csv beside them)."""
    candidates = []
    recorded = (session.params or {}).get("faces") or {}
    if recorded.get("csv"):
        candidates.append(Path(recorded["csv"]))
    candidates += sorted({Path(p).parent / FACES_CSV for p in session.paths})
    mapping: dict[str, FaceCrop] = {}
    for csv_path in dict.fromkeys(candidates):
        if csv_path.is_file():
            mapping.update({c.crop_path: c for c in read_face_map(csv_path)})
    return mapping


def source_of(session, crop_path: str) -> str | None:
    """The photo a face crop was cut from, or None when the path is not a known crop."""
    crop = face_map_for(session).get(crop_path)
    return crop.source_path if crop else None


def source_paths_for(session, cluster_ids: Sequence[int] | None = None) -> dict[int, list[str]]:
    """cluster id -> the distinct source photos of its face crops (a photo can be in several people)."""
    mapping = face_map_for(session)
    if not mapping:
        raise FacesError("this session was not made from face crops (no faces.csv found)")
    labels = np.asarray(session.labels)
    wanted = sorted(set(labels.tolist())) if cluster_ids is None else [int(c) for c in cluster_ids]
    result: dict[int, list[str]] = {}
    for cid in wanted:
        rows = np.flatnonzero(labels == cid).tolist()
        sources = [mapping[session.paths[r]].source_path for r in rows if session.paths[r] in mapping]
        result[cid] = list(dict.fromkeys(sources))
    return result


def plan_source_export(session, dest: str | os.PathLike, clusters: Sequence[int] | None = None, **options):
    """An export plan (core.export) that copies each person's source photos, once per person folder."""
    import dataclasses

    from . import export

    mapping = face_map_for(session)
    if not mapping:
        raise FacesError("this session was not made from face crops (no faces.csv found)")
    sources = [mapping[p].source_path if p in mapping else p for p in session.paths]
    view = dataclasses.replace(session, paths=sources)
    plan = export.plan_export(view, dest, clusters=clusters, **options)
    seen: set[tuple[str, int]] = set()
    items, item_clusters = [], []
    for (src, dst), cid in zip(plan.items, plan.clusters, strict=True):
        if (src, cid) not in seen:  # two faces of one person in one photo: one copy
            seen.add((src, cid))
            items.append((src, dst))
            item_clusters.append(cid)
    return dataclasses.replace(plan, items=items, clusters=item_clusters)
